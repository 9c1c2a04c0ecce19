"""The rollup rules: transactions, bundles, batches, block payloads, the namespaced Merkle tree and
the proofs a rollup checks. Pure: no I/O, no clock; the client's only dependency besides consensus."""

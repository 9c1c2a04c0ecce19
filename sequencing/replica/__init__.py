"""One replica's process: the :class:`~sequencing.replica.node.Node` that drives the consensus core,
and the parts it is built from (client intake, payloads, commits, stores, executor, catch-up, peer
service, recovery, mempool, wire)."""

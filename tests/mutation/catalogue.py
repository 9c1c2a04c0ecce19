"""The mutation catalogue: small source changes that each break one rule ordo's safety rests on.

Every mutant is applied, alone, to a temporary copy of the tree, and the fast tests named in
``tests`` run against it (``-x``: the first failure kills it). A mutant that leaves them all green
*survives*: either a test is missing or the rule is not needed, and the check fails until one of
the two is settled (a test added, or the mutant moved to :data:`EQUIVALENT` with the reason).

``tests`` lists the files expected to kill the mutant first (seconds), then the package folder as
a sweep, so a test added anywhere in that folder counts; a named file that does not exist (yet)
is left out of the run. Snippets are short and stable on purpose;
``test_catalogue.py`` (default suite) checks each one still occurs exactly once in its file, so a
code change cannot silently turn a mutant into a no-op.

A mutant with ``awaits`` guards a fix that may not be merged yet (its snippet is the fix's code):
while its snippet is absent it is reported ``pending``, which fails the whole check like a
survivor; once the fix is merged it runs like any other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Edit:
    file: str
    original: str
    replacement: str


@dataclass(frozen=True, slots=True)
class Mutant:
    id: str
    rule: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]
    awaits: str = ""  # the fix this mutant guards, if it may not be in the tree yet


# -- test selections (fastest, most specific first; a folder last as the sweep) ----------------------

MSG = "tests/consensus/test_messages.py"
CORE = "tests/consensus/test_core.py"
TEETH = "tests/consensus/test_teeth.py"
SIM = "tests/consensus/test_simulation.py"
CONS = "tests/consensus"
RULES = "tests/sequencing/test_payload_rules.py"
SPLIT = "tests/sequencing/test_split.py"
NMT = "tests/sequencing/test_nmt.py"
PROOFS = "tests/sequencing/test_proofs.py"
STORAGE = "tests/sequencing/test_storage.py"
SEQ = "tests/sequencing"
CLIENT = "tests/api/test_api_client.py"
CERTS = "tests/consensus/test_certificates.py"  # these three come with branch h/certs
ADVERSARIAL = "tests/consensus/test_core_adversarial.py"
FUZZ = "tests/consensus/test_core_fuzz.py"
NODE_SAFETY = "tests/sequencing/test_node_safety.py"  # branch h/node
REFUSALS = "tests/consensus/test_refusals.py"
REPUTATION = "tests/consensus/test_reputation.py"

V = "consensus/validation.py"
C = "consensus/core.py"
S = "consensus/safety.py"
REP_FILE = "consensus/reputation.py"


def m(id: str, rule: str, file: str, original: str, replacement: str, *tests: str) -> Mutant:
    return Mutant(id, rule, (Edit(file, original, replacement),), tests)


MUTANTS: tuple[Mutant, ...] = (
    # -- timeout certificates (issue 8: each left the whole default suite green) -----------------
    m("tc-quorum-minus-one", "a TC needs 2f+1 timeouts", V,
      "if len(tc.entries) < committee.quorum:", "if len(tc.entries) < committee.quorum - 1:",
      CERTS, MSG, CORE, CONS),
    m("tc-duplicate-authors", "a TC's authors are distinct", "consensus/messages.py",
      "if authors != sorted(set(authors)):", "if authors != sorted(authors):",
      CERTS, MSG, CORE, CONS),
    m("tc-entry-signature-unchecked", "every timeout inside a TC is signed by its author", V,
      'raise InvalidMessage(f"TC carries an invalid signature from replica {author}")', "pass",
      CERTS, MSG, CORE, CONS),
    m("tc-high-qc-unverified", "a TC's embedded high QC is verified", V,
      "    verify_qc(tc.high_qc, verifier, genesis_id)\n", "    pass\n",
      CERTS, MSG, CORE, CONS),
    m("tc-hqc-not-highest", "a TC's high QC is the highest its timeouts carry", V,
      'raise InvalidMessage("TC high QC round differs from the highest round its timeouts carry")', "pass",
      MSG, CORE, CONS),
    m("timeout-last-tc-unverified", "a timeout's last_tc is verified", V,
      "        verify_tc(timeout.last_tc, verifier, genesis_id)\n", "        pass\n",
      CERTS, MSG, CORE, CONS),
    m("core-skips-verify-timeout", "the core verifies every timeout it receives", C,
      "        verify_timeout(timeout, self._verifier, self.genesis.id)\n", "        pass\n",
      ADVERSARIAL, CORE, MSG, CONS),
    m("timeout-signature-unchecked", "a timeout is signed by its author", V,
      'raise InvalidMessage(f"invalid timeout signature from replica {timeout.author}")', "pass",
      MSG, CORE, CONS),
    m("proposal-tc-unverified", "a proposal's last_tc is verified", V,
      "        verify_tc(tc, verifier, genesis_id)\n", "        pass\n",
      FUZZ, MSG, CORE, CONS),
    Mutant("qc-in-tc-not-checked-for-equivocation",
           "every QC's signatures feed the equivocation detector, the QCs inside TCs too (PROTOCOL.md 6)",
           (Edit(C, "self._observe_qc_votes(tc.high_qc, out)", "pass"),), (ADVERSARIAL, CORE, CONS),
           awaits="issue 8 item 4 (branch h/certs)"),
    # -- quorum certificates ---------------------------------------------------------------------
    m("qc-quorum-minus-one", "a QC needs 2f+1 votes", V,
      "if len(qc.votes) < committee.quorum:", "if len(qc.votes) < committee.quorum - 1:",
      MSG, CORE, CONS),
    m("quorum-size-formula", "quorum = 2f+1 at n = 3f+1 (any two quorums share an honest replica)",
      "consensus/committee.py",
      "return (self.size + self.max_faulty + 2) // 2", "return (self.size + self.max_faulty) // 2",
      MSG, CORE, CONS),
    m("qc-duplicate-voters", "a QC's voters are distinct", "consensus/messages.py",
      "if voters != sorted(set(voters)):", "if voters != sorted(voters):",
      MSG, CORE, CONS),
    m("qc-signature-unchecked", "every vote inside a QC is signed by its voter", V,
      'raise InvalidMessage(f"QC carries an invalid signature from replica {voter}")', "pass",
      MSG, CORE, CONS),
    Mutant("non-member-signer", "only committee members sign (QC voters)", (
        Edit(V, 'raise InvalidMessage(f"QC signer {voter} is not in the committee")', "pass"),
        Edit("consensus/crypto.py",
             "        if not self.committee.contains(signer):\n            return False\n", ""),
    ), (MSG, CORE, CONS)),
    m("genesis-qc-forged", "a round-0 QC is only the genesis certificate", V,
      "if qc.block_id != genesis_id or qc.votes:", "if qc.votes:",
      MSG, CORE, CONS),
    m("chain-id-not-signed", "every signature covers the chain id", "consensus/crypto.py",
      "return pack([SIGNATURE_DOMAIN, chain_id, kind.value, round, payload])",
      "return pack([SIGNATURE_DOMAIN, kind.value, round, payload])",
      MSG, CORE, CONS),
    m("kind-not-signed", "every signature covers the message kind", "consensus/crypto.py",
      "return pack([SIGNATURE_DOMAIN, chain_id, kind.value, round, payload])",
      "return pack([SIGNATURE_DOMAIN, chain_id, round, payload])",
      MSG, CORE, CONS),
    m("vote-signature-unchecked", "a vote is signed by its voter", V,
      'raise InvalidMessage(f"invalid vote signature from replica {vote.voter}")', "pass",
      MSG, CORE, CONS),
    m("proposal-signature-unchecked", "a proposal is signed by its author", V,
      'raise InvalidMessage(f"invalid proposal signature from replica {block.author}")', "pass",
      MSG, CORE, CONS),
    m("proposal-skips-rounds-without-tc", "a proposal not following its QC's round carries a TC", V,
      "raise InvalidMessage(\"a proposal not following its QC's round must carry a TC\")", "pass",
      MSG, CORE, CONS),
    m("proposal-from-non-leader", "only the round's leader proposes", C,
      'raise InvalidMessage(f"replica {block.author} is not the leader of round {block.round}")', "pass",
      CORE, CONS),
    Mutant("synced-embedded-qcs-unverified",
           "committed blocks adopted by catch-up carry verified QCs (their commit proofs are served)",
           (Edit(C, "        for block in blocks:\n"
                    "            verify_block_certificate(block, self._verifier, self.genesis.id)\n", ""),),
           (ADVERSARIAL, CORE, CONS), awaits="issue 8 item 2 (branch h/certs)"),
    Mutant("stored-root-proof-unverified",
           "a restarted replica adopts its stored root proof's QC only after verifying it",
           (Edit(C, "verify_commit_proof(root_proof, self.tree.root.id, verifier, self.genesis.id)", "pass"),),
           (ADVERSARIAL, CORE, CONS), awaits="issue 8 item 2 (branch h/certs)"),
    m("synced-tail-proof-unverified", "catch-up adopts blocks only under a verified commit proof", C,
      "        verify_commit_proof(proof, blocks[-1].id, self._verifier, self.genesis.id)\n", "",
      CORE, CONS),
    Mutant("fetched-block-certificate-unverified", "a fetched block's QC is verified before it is used",
           (Edit(C, "            verify_block_certificate(block, self._verifier, self.genesis.id)\n"
                    "            parent = self.tree.get(block.parent_id)\n",
                 "            parent = self.tree.get(block.parent_id)\n"),),
           (ADVERSARIAL, CORE, CONS), awaits="the check-before-change rework of fetched blocks (branch h/certs)"),
    # -- voting, locking, committing ---------------------------------------------------------------
    m("vote-round-not-increasing", "vote only in a round above the highest voted round", S,
      "if r <= state.highest_voted_round:",
      "if r < state.highest_voted_round:",
      CORE, TEETH, CONS),
    m("vote-below-recovery-floor", "a recovered replica signs nothing at or below its floor", S,
      "if r <= state.recovery_floor:",
      "if False:",
      CORE, CONS),
    m("vote-without-qc-or-tc", "vote only if qc.round = round-1, or a TC for round-1 justifies it", S,
      "if block.qc.round + 1 == r:", "if block.qc.round < r:",
      CORE, TEETH, CONS),
    Mutant("vote-tc-for-any-round", "a TC justifies a vote only in the round right after it", (
        Edit(V, "if tc.round != block.round - 1:", "if False:"),
        Edit(S, "if last_tc is None or last_tc.round + 1 != r:", "if last_tc is None or last_tc.round >= r:"),
    ), (MSG, CORE, CONS)),
    # the next two were listed as equivalent (the core never calls the rules in a way that tells them
    # apart) until the rules reported typed refusals, whose boundary tests call them directly
    m("vote-tc-for-any-round-rule-only", "the vote rule itself accepts a TC only for round - 1", S,
      "if last_tc is None or last_tc.round + 1 != r:", "if last_tc is None or last_tc.round >= r:",
      REFUSALS, CONS),
    m("timeout-stale-high-qc", "a timeout carries the replica's highest QC (its lock)", S,
      "elif high_qc.round < state.high_qc.round:", "elif False:",
      REFUSALS, CONS),
    m("lock-rule-removed", "after a TC, vote only for a block extending the highest QC in it (lock)", S,
      "if block.qc.round < last_tc.max_hqc_round:", "if False:",
      TEETH, CORE, CONS),
    m("lock-rule-removed-random-search", "the lock rule's removal is found by random schedules and "
      "Twins, not only by the scripted attack (issue 8; killed in branch h/simadv)", S,
      "if block.qc.round < last_tc.max_hqc_round:", "if False:",
      "tests/consensus/test_properties.py", "tests/consensus/test_twins.py"),
    m("leader-proposes-after-timeout", "a leader never proposes in a round it timed out in", C,
      "if self._proposed_round >= r or r <= self.safety.highest_voted_round:",
      "if self._proposed_round >= r:",
      ADVERSARIAL, CORE, CONS),
    m("leader-votes-after-timeout", "a leader never votes for its own late payload after timing out", C,
      "refusal = self.rules.vote_refusal(self.safety, block, ctx.tc)", "refusal = None",
      ADVERSARIAL, CORE, CONS),
    m("commit-not-direct-successor", "2-chain commit: the certified block's round is its parent's + 1", C,
      "if parent is None or certified.round != parent.round + 1:", "if parent is None:",
      CORE, TEETH, CONS),
    # -- persistence -----------------------------------------------------------------------------
    m("vote-before-persist-core", "the core persists its safety state before the vote it signs", C,
      "        self.safety = self.rules.record_vote(state, block.round)\n        self._persist(out)\n",
      "        self.safety = self.rules.record_vote(state, block.round)\n",
      CORE, TEETH, CONS),
    m("timeout-before-persist-core", "the core persists its safety state before the timeout it signs", C,
      "        self.safety = self.rules.record_vote(self.safety, r)\n        self._persist(out)\n",
      "        self.safety = self.rules.record_vote(self.safety, r)\n",
      CORE, TEETH, CONS),
    m("vote-before-persist-node", "the node's vote leaves only after the safety state is on disk",
      "sequencing/replica/node.py",
      "await self.stores.safety_call(self.stores.require_safety().save_safety, state, voted)",
      "self._require_nursery().start_soon(self.stores.safety_call, self.stores.require_safety().save_safety, "
      "state, voted)",
      NODE_SAFETY, SEQ),
    m("save-safety-no-fsync", "the safety state is fsync'd (synchronous=FULL)", "sequencing/storage/safety.py",
      '"save_safety", durable=True', '"save_safety", durable=False',
      STORAGE, SEQ),
    m("v1-migration-drops-safety-state", "a version-1 file holding the other file's rows (a safety state in "
      "what opens as the ledger) is refused, never migrated", "sequencing/storage/core.py",
      'if c.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:', "if False:",
      STORAGE, SEQ),
    Mutant("recovery-floor-arithmetic", "a lost-disk replica signs nothing at or below R + 2",
           (Edit("sequencing/replica/recovery.py", "return max(peers.values()) + 2",
                 "return max(peers.values()) + 1"),),
           ("tests/sequencing/test_recovery_floor.py", SEQ), awaits="the recovery rework (branch h/keys)"),
    Mutant("recovery-waits-for-too-few-peers", "recovery waits for n - q + f + 1 answers (PROTOCOL.md 8)",
           (Edit("sequencing/replica/recovery.py",
                 "return committee.size - committee.quorum + committee.max_faulty + 1",
                 "return committee.size - committee.quorum + committee.max_faulty"),),
           ("tests/sequencing/test_recovery_floor.py", SEQ), awaits="the recovery rework (branch h/keys)"),
    # -- evidence --------------------------------------------------------------------------------
    Mutant("evidence-same-block", "evidence names two different blocks", (
        Edit("consensus/messages.py", "if not self.block_a < self.block_b:", "if self.block_a > self.block_b:"),
        Edit("consensus/evidence.py", "if evidence.block_a == evidence.block_b:", "if False:"),
    ), (CERTS, MSG, CORE, CONS)),
    m("evidence-signature-unchecked", "evidence carries the offender's two signatures", "consensus/evidence.py",
      'raise InvalidMessage("evidence carries a signature the offender did not make")', "pass",
      MSG, CORE, CONS),
    m("double-proposal-hidden", "a held proposal goes to a voter that voted for another block (PROTOCOL.md 6)", C,
      "        if first:\n            self._show_held_proposal(vote, out)\n", "",
      "tests/consensus/test_double_proposal.py", CONS),
    m("core-records-unverified-evidence", "the core records only evidence that verifies", C,
      "                verify_evidence(message, self._verifier)\n", "",
      "tests/consensus/test_core_evidence_input.py", CORE, CONS),
    m("payload-accepts-invalid-evidence", "a voter rejects a block carrying invalid evidence",
      "sequencing/replica/payload_rules.py",
      'raise PayloadRejected(f"invalid evidence: {exc}") from None', "pass",
      RULES, SEQ),
    # -- mempool (a transaction is queued once) ---------------------------------------------------
    m("mempool-run-forgets-recent", "a run's transactions taken recently are duplicates, not queued again",
      "sequencing/replica/mempool.py",
      "self._queued.isdisjoint(ids) and self._recent.isdisjoint(ids)", "self._queued.isdisjoint(ids)",
      "tests/sequencing/test_mempool_batches.py", SEQ),
    m("mempool-run-repeats-within-call", "a transaction twice in one call is queued once",
      "sequencing/replica/mempool.py",
      "if (len(set(ids)) == len(ids) and self._queued", "if (self._queued",
      "tests/sequencing/test_mempool_batches.py", SEQ),
    m("mempool-take-overfills", "a batch takes a run's head when the whole run does not fit",
      "sequencing/replica/mempool.py",
      "fits = entry.fitting(max_txs - txs, max_bytes - size) or (0 if out else 1)",
      "fits = len(entry)",
      "tests/sequencing/test_mempool_batches.py", SEQ),
    # -- the split's window (exactly once across replicas) --------------------------------------
    m("window-no-committed-part", "a block skips the transactions its window committed",
      "sequencing/rollup/tx_window.py",
      "return SeenBefore(self, low + 1, below, sets)", "return SeenBefore(None, low + 1, below, sets)",
      "tests/sequencing/test_tx_window.py"),
    m("v3-migration-keeps-payload-digests", "a version-3 ledger's sub-log digests are recomputed over tx ids "
      "when it is migrated (replicas upgraded at different heights agree)", "sequencing/storage/ledger.py",
      'c.execute("DELETE FROM rollups")', "return", STORAGE),
    Mutant("replay-ignores-window", "a block's slices replayed from its batch bodies skip what its window "
           "skipped (the ids not in the block)", (
               Edit("sequencing/rollup/block_content.py", "return self._ids.issuperset(ids)", "return True"),
               Edit("sequencing/rollup/block_content.py", "return tx_id not in self._ids", "return False"),
           ), ("tests/sequencing/test_replay.py", STORAGE, SEQ)),
    m("ledger-skips-slice-counts", "replayed slices are checked against the stored slice counts",
      "sequencing/storage/ledger.py",
      "if [(rid, len(payloads)) for rid, payloads in slices] != counts:", "if False:", STORAGE),
    m("safety-save-yields", "a vote's safety save lets no other task run (it is on the round's critical path)",
      "sequencing/replica/stores.py",
      "await trio.lowlevel.checkpoint_if_cancelled()\n        return fn(*args)",
      "await trio.lowlevel.checkpoint()\n        return fn(*args)",
      "tests/sequencing/test_storage_thread.py"),
    m("commit-handoff-yields", "a commit reaches the executor without a yield while its channel has room",
      "sequencing/replica/commits.py",
      "self.executor.send.send_nowait(committed)", "raise trio.WouldBlock",
      "tests/sequencing/test_commits.py"),
    m("executor-trusts-handed-batches", "a committed block's bodies are stored under their own digests",
      "sequencing/replica/executor.py",
      "if handed is not None and [b.digest for b in handed] == list(payload.batches):", "if handed is not None:",
      "tests/sequencing/test_recent_commits.py"),
    m("window-forgets-repeats", "an id held at two heights stays when the lower one leaves",
      "sequencing/rollup/tx_window.py",
      "if repeats and not repeats.keys().isdisjoint(ids):", "if False:",
      "tests/sequencing/test_tx_window.py"),
    m("split-ignores-window", "the split's fast path checks the window too", "sequencing/rollup/block_content.py",
      "if seen.isdisjoint(ids) and self.before.isdisjoint(ids):", "if seen.isdisjoint(ids):",
      "tests/sequencing/test_tx_window.py"),
    # -- payload rules ---------------------------------------------------------------------------
    m("payload-duplicate-batch", "a block names a batch once", "sequencing/replica/payload_rules.py",
      'raise PayloadRejected("a batch appears twice")', "pass",
      RULES, SEQ),
    m("payload-expired-batch", "a block includes only batches live at its height",
      "sequencing/replica/payload_rules.py",
      "if not batch.live_at(block.height, limits.batch_ttl_blocks):", "if False:",
      RULES, SEQ),
    m("payload-committed-batch", "a committed batch is never included again", "sequencing/replica/payload_rules.py",
      'raise PayloadRejected("a batch was already committed")', "pass",
      RULES, SEQ),
    m("payload-ancestor-batch", "a batch in an uncommitted ancestor is not included again",
      "sequencing/replica/payload_rules.py",
      'raise PayloadRejected("a batch is already in an uncommitted ancestor")', "pass",
      RULES, SEQ),
    m("data-root-not-recomputed", "a voter recomputes data_root before voting", "sequencing/replica/payload_rules.py",
      "if content.data_root != block.data_root:", "if False:",
      RULES, SEQ),
    m("bundle-not-atomic", "a bundle lands whole or not at all", "sequencing/rollup/block_content.py",
      "        if not self.seen.isdisjoint(ids) or not self.before.isdisjoint(ids):\n            return\n",
      "        if self.seen.issuperset(ids):\n            return\n"
      "        bundle = Bundle(tuple(tx for tx in bundle.txs if tx.id not in self.seen))\n"
      "        ids = [tx.id for tx in bundle.txs]\n",
      SPLIT, RULES, SEQ),
    # -- proofs ----------------------------------------------------------------------------------
    m("nmt-namespace-order", "NMT inner nodes join namespace-ordered children only", "sequencing/rollup/nmt_proofs.py",
      'raise ProofError(f"nodes out of namespace order: {left.max_ns} > {right.min_ns}")', "pass",
      NMT, PROOFS, SEQ),
    m("nmt-completeness-left", "a slice proof shows every subtree left of it is below the namespace",
      "sequencing/rollup/nmt_proofs.py",
      "if node.max_ns >= namespace:", "if node.max_ns > namespace:",
      NMT, PROOFS, SEQ),
    m("nmt-completeness-right", "a slice proof shows every subtree right of it is above the namespace",
      "sequencing/rollup/nmt_proofs.py",
      "if node.min_ns <= namespace:", "if node.min_ns < namespace:",
      NMT, PROOFS, SEQ),
    m("commit-proof-qc-unverified", "a commit proof's QC is verified", "consensus/commit_proof.py",
      "    verify_qc(proof.qc, verifier, genesis_id)\n", "",
      MSG, PROOFS, CONS),
    m("commit-proof-not-2chain", "a commit proof ends in two consecutive rounds", "consensus/commit_proof.py",
      "if headers[-1].round != headers[-2].round + 1:", "if False:",
      MSG, PROOFS, CONS),
    m("commit-proof-not-linked", "a commit proof's headers are a parent chain", "consensus/commit_proof.py",
      "if child.parent_id != parent_id or child.parent_round != parent.round:",
      "if child.parent_round != parent.round:",
      "tests/consensus/test_commit_proof_links.py", MSG, PROOFS, CONS),
    m("client-skips-commit-proof", "the client checks a slice's or bundle's commit proof",
      "sequencing/rollup/proofs.py",
      "def _check_commit(commit: CommitProof, verifier: Verifier) -> BlockHeader:\n",
      "def _check_commit(commit: CommitProof, verifier: Verifier) -> BlockHeader:\n"
      "    return commit.headers[0]\n",
      PROOFS, CLIENT, SEQ),
    m("slice-proof-not-rechunked", "a slice proof is checked over the chunks of all its transactions",
      "sequencing/rollup/proofs.py",
      "chunks = [data for _, data in slice_leaves(self.rollup_id, self.transactions)]",
      "chunks = [data for _, data in slice_leaves(self.rollup_id, self.transactions)][:1]",
      PROOFS, SEQ),
    m("bundle-tx-not-at-offset", "each bundle transaction is the entry it claims of a proven chunk",
      "sequencing/rollup/proofs.py",
      "if not 0 <= offset < len(chunk) or chunk[offset] != tx.payload:", "if not 0 <= offset < len(chunk):",
      PROOFS, SEQ),
    m("bundle-negative-offset", "a bundle location's offset is not negative (no Python index from the end)",
      "sequencing/rollup/proofs.py",
      "if not 0 <= offset < len(chunk) or chunk[offset] != tx.payload:",
      "if offset >= len(chunk) or chunk[offset] != tx.payload:",
      PROOFS, SEQ),
    m("bundle-location-twice", "two bundle transactions never claim the same place",
      "sequencing/rollup/proofs.py",
      "if len(set(self.locations)) != len(self.locations):", "if False:",
      PROOFS, SEQ),
    m("bundle-leaf-two-rollups", "the bundle transactions in one proven chunk all have its rollup",
      "sequencing/rollup/proofs.py",
      "if namespaces[j] not in (None, tx.rollup_id):", "if False:",
      PROOFS, SEQ),
    m("client-ignores-slice-proof-failure", "the client refuses a slice whose proof fails",
      "sequencing/client/checks.py",
      'raise ProofFailed(f"slice proof for rollup {rollup_id} at height {height}: {exc}") from None', "pass",
      CLIENT, "tests/api/test_api_endpoints.py"),
    # -- leader reputation (issue 11): liveness rules, caught by the simulator's leader checker -----
    m("reputation-no-quorum-floor", "reputation never narrows the candidates below a quorum (liveness)",
      REP_FILE, "if len(active) < self.quorum:", "if not active:", REPUTATION, CONS),
    m("reputation-no-lag", "a leader choice looks only at blocks committed lag rounds before it",
      REP_FILE, "horizon = round - self.lag", "horizon = round", REPUTATION, CONS),
    m("reputation-blind-to-commits", "the core tells the leader schedule every block it commits", C,
      "        for block in committed:\n            self.leaders.observe_commit(block)\n", "", REPUTATION, CONS),
    m("reputation-blind-to-catch-up", "blocks adopted by catch-up count for the leader schedule too", C,
      "        for block, block_proof in zip(blocks, proofs, strict=True):\n"
      "            self.leaders.observe_commit(block)\n",
      "        for block, block_proof in zip(blocks, proofs, strict=True):\n", REPUTATION, CONS),
    m("reputation-not-rebuilt-on-restart", "a restarted replica rebuilds its leader schedule from its stored log",
      "sequencing/replica/node.py", "                self.leaders.observe_commit(block)\n", "                pass\n",
      "tests/sequencing/test_leader_config.py", SEQ),
)

# Mutants left out because no test can tell them apart from the real code; each with its reason.
EQUIVALENT: tuple[tuple[str, str], ...] = (
    ("validation: only the explicit committee-membership check of a QC voter / vote / timeout removed",
     "Verifier.verify already answers False for a non-member, so the verdict is unchanged (only the "
     "message differs); `non-member-signer` removes both checks instead"),
    ("evidence: only verify_evidence's same-block check, or only Evidence's ordering check, removed",
     "either one alone refuses evidence naming one block twice; `evidence-same-block` removes both"),
)


def by_id(mutant_id: str) -> Mutant:
    for mutant in MUTANTS:
        if mutant.id == mutant_id:
            return mutant
    raise KeyError(f"no mutant {mutant_id!r}; see `python -m tests.mutation --list`")

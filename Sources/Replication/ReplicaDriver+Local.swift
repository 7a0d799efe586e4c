import Consensus
import Ledger
import StockadeCore

/// The local-warehouse fallback (docs/local-fallback.md): a reserve the quorum cannot decide in
/// time is granted from this node's reserve when its region is local, as a provisional hold in the
/// node's own log; provisional holds are changed here until handed over, and replayed into the
/// ledger once the quorum answers again. The leader keeps every reserve topped up.
extension ReplicaDriver {
    /// Work of the fallback's own that goes through the log.
    enum LocalTask {
        case epoch
        case reconcile
        case refill
    }

    /// Whether a proposal made now would reach a majority: a leader heard from one lately, or a
    /// follower heard from its leader lately.
    var reachesQuorum: Bool {
        if raft.isLeader { return hasRecentMajority() }
        guard let leader = raft.leaderID, let contact = lastContactMs[leader] else { return false }
        return nowMs - contact <= recentContactWindowMs
    }

    /// The time provisional holds are stamped with: the cluster's agreed time while there is one;
    /// cut off from it, the last agreed time carried forward by the monotonic clock; never having
    /// had one, the wall clock.
    var localTimeMs: Int64 {
        if let agreed = clockReading.timeMs { return max(agreed, lastTimeMs) }
        if let last = fallback.lastAgreedTime { return last.timeMs + (nowMs - last.atMs) }
        return wallMs
    }

    /// The cluster's agreed time now (never before the last command time), or nil while this node
    /// sees no agreement.
    var agreedTimeMs: Int64? { clockReading.timeMs.map { max($0, lastTimeMs) } }

    /// The time a hold granted outside the log (a provisional hold, a cache hold) is stamped with: the cluster's agreed time; cut off from it, the
    /// last agreed time seen since this process started, carried forward by the monotonic clock
    /// and by the wall clock (at its last offset) while the two agree within the allowed skew, the
    /// later of the two (a hold is never stamped early, so it never expires early). Nil otherwise:
    /// none seen since start (restarted while cut off), or the two disagree (a jumped wall clock,
    /// a monotonic clock running fast or slow over a long partition). No single clock stamps it.
    public var grantTimeMs: Int64? {
        if let agreed = agreedTimeMs { return agreed }
        return carriedTimes.map { max($0.byMonotonic, $0.byWall) }
    }

    /// The last agreed time carried forward by the monotonic clock and by the wall clock (at the
    /// offset it last had), while the two agree within the allowed skew; nil otherwise, or when no
    /// agreed time was seen since start.
    var carriedTimes: (byMonotonic: Int64, byWall: Int64)? {
        guard let last = fallback.lastAgreedTime else { return nil }
        let byMonotonic = last.timeMs + (nowMs - last.atMs)
        let byWall = wallMs - (last.wallMs - last.timeMs)
        guard abs(byMonotonic - byWall) <= limits.clockSkewMaxMs else { return nil }
        return (byMonotonic, byWall)
    }

    /// The time by which provisional holds may expire, or nil when this node cannot tell.
    ///
    /// No single clock decides: with the cluster's agreed time, that. Cut off from it, the node
    /// carries the last agreed time forward twice, by its monotonic clock and by its wall clock
    /// (at the offset it last had), and decides only while the two agree within the allowed skew,
    /// by the earlier, less a grace. A wall clock that jumps, or a monotonic clock that runs fast,
    /// then stops expiry on its own rather than ending holds early; they stay held until the
    /// ledger decides them.
    var localExpiryTimeMs: Int64? {
        if clockReading.timeMs != nil { return localTimeMs }
        return carriedTimes.map { min($0.byMonotonic, $0.byWall) - limits.local.expiryGraceMs }
    }

    /// Whether this node owns a warehouse, and so may keep a reserve and a local log.
    var ownsWarehouse: Bool { ledger.warehouses.contains { $0.owner == configuration.nodeID } }

    /// Answers `origin` with `outcome`, unless `outcome` says the quorum could not decide a reserve
    /// of this node's own caller: then the reserve is tried against this node's reserve first.
    mutating func settle(_ origin: Origin, _ command: Command, _ outcome: Outcome) {
        guard case .local = origin, case .reserve(let request) = command, case .rejected(let error, _) = outcome,
            error.code == .quorumUnavailable || error.code == .outcomeUnknown
        else { return answer(origin, outcome) }
        guard let timeMs = grantTimeMs,
            let granted = local.grant(request, ledger: ledger, term: raft.term, timeMs: timeMs, limits: limits)
        else {
            return answer(origin, outcome)
        }
        if case .reservation = granted { fallback.fallbacksTaken += 1 }
        answerOnceDurable(origin, granted)
    }

    /// Answers once the local records made so far are on disk.
    mutating func answerOnceDurable(_ origin: Origin, _ outcome: Outcome) {
        if local.recordsMade <= fallback.recordsDurable {
            answer(origin, outcome)
        } else {
            fallback.answers.append((origin, outcome, local.recordsMade))
        }
    }

    /// A proposal about a provisional hold of this node is answered here: a replayed reserve from
    /// the hold, a confirm, release or extend by the ledger's rule in the local log. True if it was.
    mutating func answeredLocally(_ proposal: Proposal) -> Bool {
        guard local.count > 0 else { return false }
        let outcome: Outcome?
        switch proposal.command {
        case .reserve(let request): outcome = local.replay(request)
        case .confirm(let id): outcome = local.step(id, .confirm, timeMs: localTimeMs, expiryTimeMs: localExpiryTimeMs, limits: limits)
        case .release(let id): outcome = local.step(id, .release, timeMs: localTimeMs, expiryTimeMs: localExpiryTimeMs, limits: limits)
        case .extend(let id, let ttlMs):
            outcome = local.step(id, .extend(ttlMs: ttlMs), timeMs: localTimeMs, expiryTimeMs: localExpiryTimeMs, limits: limits)
        default: outcome = nil
        }
        guard let outcome else { return false }
        answerOnceDurable(proposal.origin, outcome)
        return true
    }

    /// The outcome of the fallback's own proposal.
    mutating func finishLocalTask(_ task: LocalTask, _ outcome: Outcome) {
        switch task {
        case .epoch:
            fallback.epochInFlight = false
            local.follow(ledger)
        case .reconcile:
            fallback.reconcileInFlight = false
            switch outcome {
            case .localReconciled(_, let results):
                fallback.reconciledHolds += results.filter { $0 == .applied || $0 == .duplicate }.count
            case .rejected(let error, _) where error.code == .invalidState:
                local.noteRefusedBatch()
            default:
                break
            }
            local.follow(ledger)
        case .refill:
            fallback.refillInFlight = false
        }
    }

    /// The fallback's turn: learn the epoch, replay what waits, expire provisional holds that are
    /// due, and (as leader) refill reserves or (as owner) give back what is held beyond them.
    mutating func localTurn() {
        local.follow(ledger)
        if local.mustReopen {
            // The ledger took in sequences this log no longer has: a new log, a new epoch.
            // The new nonce comes from the old one and how far the ledger had read it: distinct,
            // and it leaves the driver's random stream as it was.
            var source = SplitMix64(seed: local.nonce ^ local.reflectedThrough)
            var nonce = source.next() | 1
            while nonce == local.nonce { nonce = source.next() | 1 }
            local.reopen(nonce: nonce)
            fallback.epochInFlight = false
        }
        let connected = reachesQuorum
        if connected && local.epoch == nil && !fallback.epochInFlight && ownsWarehouse {
            local.open()
            fallback.epochInFlight = true
            proposeLocal(.beginLocalEpoch(node: configuration.nodeID, nonce: local.nonce), .epoch)
        }
        if connected && !fallback.reconcileInFlight && fallback.readyBatch == nil, local.hasUnreplayed, let batch = local.nextBatch(limits: limits) {
            fallback.readyBatch = (batch, local.recordsMade)
        }
        proposeReadyBatch()
        guard nowMs >= fallback.nextCheckMs else { return }
        fallback.nextCheckMs = nowMs + limits.local.refillIntervalMs
        fallback.oldestProvisionalMs = local.oldestCreatedAtMs()
        if local.count > 0, let expiryTime = localExpiryTimeMs { _ = local.expireDue(timeMs: expiryTime, limit: limits.expireBatchMax) }
        if connected && mayAnswerFromState && !fallback.refillInFlight {
            let refills = ledger.localReserveRefills(lowWaterPercent: limits.local.refillLowWaterPercent, limit: limits.local.refillsMax)
            if !refills.isEmpty {
                fallback.refillInFlight = true
                let term = raft.term
                proposeBatch(
                    refills.map {
                        Proposal(
                            command: .grantAllotment($0.key, quantity: $0.quantity), origin: .internal(.refill),
                            deadlineMs: nowMs + configuration.quorumDeadlineMs, checked: true, leaderTerm: term)
                    })
            }
        }
        if connected && local.epoch != nil { giveBackExcess() }
    }

    /// Proposes the handed-over batch once its handover record is on disk.
    mutating func proposeReadyBatch() {
        guard let (batch, needed) = fallback.readyBatch, needed <= fallback.recordsDurable else { return }
        fallback.readyBatch = nil
        fallback.reconcileInFlight = true
        proposeLocal(.reconcileLocal(batch), .reconcile)
    }

    mutating func proposeLocal(_ command: Command, _ task: LocalTask) {
        proposeBatch([
            Proposal(
                command: command, origin: .internal(task), deadlineMs: nowMs + configuration.quorumDeadlineMs, checked: true,
                leaderTerm: nil)
        ])
    }

    /// Units this node holds in reserve beyond twice its target (or any, once it no longer owns
    /// the warehouse or the policy is gone) go back, down to the target.
    mutating func giveBackExcess() {
        var returns: [Allocation] = []
        for (key, _) in ledger.allotments where key.holder == .node(configuration.nodeID) {
            let row = RowKey(sku: key.sku, warehouse: key.warehouse)
            let target = ledger.localReserveTarget(row).flatMap { $0.owner == configuration.nodeID ? $0.target : nil } ?? 0
            let spendable = local.spendable(row, in: ledger)
            if spendable > 0 && (target == 0 || spendable > 2 * target) {
                returns.append(Allocation(sku: key.sku, warehouse: key.warehouse, quantity: spendable - target))
            }
        }
        returns.sort { ($0.sku, $0.warehouse) < ($1.sku, $1.warehouse) }
        local.giveBack(Array(returns.prefix(limits.local.reconcileHoldsMax)))
    }

    /// Local records up to `count` are durable: answers waiting on them go, and a handed-over batch may leave.
    mutating func localRecordsPersisted(_ count: Int) {
        guard count > 0 else { return }
        fallback.recordsDurable += count
        var still: [(Origin, Outcome, Int)] = []
        for (origin, outcome, needed) in fallback.answers {
            if needed <= fallback.recordsDurable { answer(origin, outcome) } else { still.append((origin, outcome, needed)) }
        }
        fallback.answers = still
        proposeReadyBatch()
    }

    /// A provisional hold of this node, as reads show it (nil when the id is none).
    public func provisionalHold(_ id: ReservationID) -> Hold? { local.entries[id]?.hold }

    /// What became of a provisional hold the ledger did not take as granted here.
    public func localResolution(_ id: ReservationID) -> LocalHolds.Resolution? { local.resolutions[id] }
}

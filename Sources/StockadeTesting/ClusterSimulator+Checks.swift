import Consensus
import Ledger
import Replication
import StockadeCore

extension ClusterSimulator {
    // MARK: - Answers

    /// A client's answer: each call is answered at most once; grants become acknowledged holds.
    func record(_ call: Call, _ outcome: Outcome) {
        if call.id < 0 { return cacheAnswered(call, outcome) }
        if cache != nil && cacheSettles(call, outcome) {
            answerNotes[call.id, default: ""] += "not_found at step \(step), asked again after the cache settled; "
            return
        }
        answerNotes[call.id, default: ""] += "answered by n\(call.node) at step \(step)"
        answers[call.id, default: []].append(outcome)
        if answers[call.id]!.count > 1 { violations.append("call \(call.id) (\(call.command)) answered twice: \(answers[call.id]!)") }
        answerCounts[Self.kind(of: outcome), default: 0] += 1
        if let problem = witness.close(call.id, outcome) { violations.append("\(problem); step \(step)") }
        if let id = call.command.reservationID, let operation = call.command.historyOperation {
            var hold: HoldView?
            var created = false
            var code: String?
            switch outcome {
            case .reservation(let answered, let made):
                hold = HoldView(answered)
                created = made
            case .rejected(let error, _): code = error.code.rawValue
            default: break
            }
            let answer = HistoryAnswer(
                call: call.id, node: "n\(call.node)", operation: operation, reservationId: id.rawValue, hold: hold, created: created, code: code)
            if let problem = histories.take(answer) { violations.append("\(problem); step \(step)") }
        }
        guard case .reservation(let hold, let created) = outcome else { return }
        if created && hold.path == .local { localGrants += 1 }
        if created {
            grantsByPath[hold.path.name, default: 0] += 1
            // A grant is stamped with a time the majority's clocks agree on, on every path: no
            // single node's clock decides when a hold expires.
            let timeBoundMs = limits.clockSkewMaxMs + limits.clockRoundTripMaxMs + 1_500
            if abs(hold.createdAtMs - majorityWallMs) > timeBoundMs + limits.local.expiryGraceMs {
                violations.append(
                    "reservation \(hold.reservationId) granted on the \(hold.path.name) path at \(hold.createdAtMs), \(hold.createdAtMs - majorityWallMs) ms from the majority's clocks; step \(step)")
            }
        }
        switch call.command {
        case .reserve(let request):
            guard hold.reservationId == request.reservationId else {
                violations.append("reserve \(request.reservationId) answered with hold \(hold.reservationId)")
                return
            }
            acknowledged[hold.reservationId] = AcknowledgedHold(hold)
        case .confirm, .release, .extend:
            if let known = acknowledged[hold.reservationId], known.token == hold.token { acknowledged[hold.reservationId] = AcknowledgedHold(hold) }
        default:
            break
        }
    }

    /// Every call about reservation `id`, in call order, with the node asked and its answers, and
    /// the hold the most advanced replica ends with (for `stockade-sim --seed`).
    public func trace(_ id: String) -> [String] {
        var lines = calls.keys.sorted().compactMap { number -> String? in
            guard let command = calls[number], command.reservationID?.rawValue == id else { return nil }
            let answered = (answers[number] ?? []).map { outcome -> String in
                switch outcome {
                case .reservation(let hold, let created):
                    "\(created ? "granted" : "hold") \(hold.path.name) token \(hold.token.rawValue) \(hold.status.name) expires \(hold.expiresAtMs) finished \(hold.finishedAtMs)"
                default: Self.kind(of: outcome)
                }
            }
            return "call \(number) \(command.historyOperation?.rawValue ?? "?"): \(answered.isEmpty ? "no answer" : answered.joined(separator: ", ")) (\(answerNotes[number] ?? ""))"
        }
        let ledger = nodeIDs.compactMap { nodes[$0]!.driver?.ledger }.max { $0.appliedIndex < $1.appliedIndex }
        if let hold = ledger?.hold(ReservationID(id)) {
            lines.append("final: \(hold.path.name) token \(hold.token.rawValue) \(hold.status.name) created \(hold.createdAtMs) expires \(hold.expiresAtMs) finished \(hold.finishedAtMs); conflicts \(ledger!.conflicts(of: ReservationID(id)).count)")
        } else {
            lines.append("final: no hold")
        }
        return lines
    }

    static func kind(of outcome: Outcome) -> String {
        switch outcome {
        case .reservation(_, let created): created ? "granted" : "replayed"
        case .rejected(let error, _): error.code.rawValue
        default: "applied"
        }
    }

    /// Follows acknowledged holds on the most advanced live replica: a confirm, release or extend
    /// (answered or not) moves the earliest time the hold may be purged.
    func observeAcknowledged() {
        guard
            let ledger = nodeIDs.compactMap({ nodes[$0]!.driver?.ledger }).max(by: { $0.appliedIndex < $1.appliedIndex })
        else { return }
        for (reservation, known) in acknowledged {
            guard let hold = ledger.hold(reservation), hold.token == known.token else { continue }
            acknowledged[reservation] = AcknowledgedHold(hold)
        }
        for reservation in histories.histories.keys {
            guard let hold = ledger.hold(ReservationID(reservation)) else { continue }
            histories.follow(HoldView(hold))
        }
    }

    // MARK: - Every step

    func checkStep() {
        for id in nodeIDs {
            guard let driver = nodes[id]!.driver else { continue }
            let raft = driver.raft
            if raft.isLeader {
                if let other = leaderOfTerm[raft.term], other != id {
                    violations.append("election safety: nodes \(other) and \(id) both lead term \(raft.term)")
                }
                let newLeader = leaderOfTerm[raft.term] == nil
                if newLeader {
                    leaderElections += 1
                    // Sometimes cut a new leader off before its first appends land: its own entries
                    // stay on it alone, and a later leader must overwrite them (Raft's Figure 8).
                    if !healing && Int.random(in: 0..<100, using: &random) < faults.leaderFaultPerMille * 2 {
                        for other in nodeIDs where other != id { blocked.formUnion([[id, other], [other, id]]) }
                    }
                }
                leaderOfTerm[raft.term] = id
                // Leader completeness: the leader holds every committed entry (or has it in its snapshot).
                for (index, entry) in committed
                where (newLeader || step % 25 == 0) && index > raft.compactedThrough
                    && (committedBy[index]?.term ?? .max) < raft.term
                {
                    if raft.term(at: index) != entry.term {
                        let source = committedBy[index]
                        violations.append(
                            "leader completeness: leader \(id) of term \(raft.term) lacks committed \(index) (term \(entry.term), first seen committed on n\(source?.node ?? 0) at step \(source?.step ?? 0) with commit \(source?.commit ?? 0)); leader: \(String(reflecting: raft)); step \(step)")
                        break
                    }
                }
            }
            // Command time (which decides when holds expire) stays within the allowed skew, the
            // round-trip uncertainty and the simulated tick drift of the majority's clocks, however
            // far one node's clock jumps.
            let timeBoundMs = limits.clockSkewMaxMs + limits.clockRoundTripMaxMs + 1_500
            if driver.lastTimeMs > majorityWallMs + timeBoundMs {
                violations.append(
                    "command time \(driver.lastTimeMs) on node \(id) is \(driver.lastTimeMs - majorityWallMs) ms ahead of the majority's clocks (leader: \(raft.isLeader)); step \(step)")
            }
            if driver.ledger.appliedIndex > raft.commitIndex {
                violations.append("node \(id) applied \(driver.ledger.appliedIndex) beyond its commit index \(raft.commitIndex)")
            }
            // Log matching over committed prefixes, and remember what is committed.
            let from = checkedThrough[id] ?? 0
            for entry in raft.entries where entry.index > from && entry.index <= raft.commitIndex {
                if let known = committed[entry.index] {
                    if known != entry {
                        violations.append("log matching: committed \(entry.index) differs on node \(id)")
                        break
                    }
                } else {
                    committed[entry.index] = entry
                    committedBy[entry.index] = (node: id, term: raft.term, step: step, commit: raft.commitIndex)
                    if !entry.payload.isEmpty, let command = try? TimedCommand(decoding: entry.payload, limits: limits) {
                        lastCommittedTimeMs = max(lastCommittedTimeMs, command.timeMs)
                        if case .reserve(let request) = command.command { committedReserves.insert(request.reservationId) }
                    }
                }
            }
            checkedThrough[id] = max(from, raft.commitIndex)
            let problems = driver.ledger.invariantViolations()
            if !problems.isEmpty { violations.append("node \(id) ledger: \(problems.prefix(3)); step \(step)") }
            let state = driver.stateViolations
            if !state.isEmpty { violations.append("node \(id) driver: \(state); step \(step)") }
        }
        if step % 20 == 0 { observeAcknowledged() }
        if localReserves { checkEscrow() }
    }

    /// Entries a node is about to apply are committed: their command times count towards
    /// `lastCommittedTimeMs` even if every node compacts them into a snapshot before a step's
    /// check reads them from a log (seed 50068: a purge at a time the checker never saw committed
    /// made a properly purged hold look lost).
    func noteApplied(_ entries: [Entry]) {
        for entry in entries where entry.index > appliedSeenThrough {
            guard entry.index == appliedSeenThrough + 1 else {
                violations.append("index \(entry.index) applied before \(appliedSeenThrough + 1) was; step \(step)")
                return
            }
            appliedSeenThrough = entry.index
            guard !entry.payload.isEmpty, let command = try? TimedCommand(decoding: entry.payload, limits: limits) else {
                truth.skip(index: entry.index)
                continue
            }
            _ = truth.apply(command, index: entry.index)
            witness.observe(truth)
            lastCommittedTimeMs = max(lastCommittedTimeMs, command.timeMs)
            if case .reserve(let request) = command.command { committedReserves.insert(request.reservationId) }
        }
    }

    func converged() -> Bool {
        let drivers = nodeIDs.compactMap { nodes[$0]!.driver }
        guard drivers.count == nodeIDs.count else { return false }
        let applied = drivers.map(\.ledger.appliedIndex)
        let leaderLast = drivers.first { $0.raft.isLeader }?.raft.lastIndex
        return Set(applied).count == 1 && drivers.allSatisfy { $0.raft.commitIndex == applied[0] } && leaderLast == applied[0]
            && drivers.allSatisfy { !$0.local.hasUnreplayed } && cacheSettled
    }

    // MARK: - The end

    func checkFinalState() {
        guard converged() else {
            let state = nodeIDs.map {
                "applied \(nodes[$0]!.driver?.ledger.appliedIndex ?? 0): \(nodes[$0]!.driver.map { String(reflecting: $0.raft) } ?? "down")"
            }
            violations.append("cluster did not converge after healing: \(state)")
            return
        }
        observeAcknowledged()
        let reference = nodes[nodeIDs[0]]!.driver!.ledger.encodeSnapshot()
        for id in nodeIDs.dropFirst() where nodes[id]!.driver!.ledger.encodeSnapshot() != reference {
            violations.append("replicas differ after converging: node \(id) vs node \(nodeIDs[0])")
        }
        for id in nodeIDs {
            let ledger = nodes[id]!.driver!.ledger
            let problems = ledger.invariantViolations()
            if !problems.isEmpty { violations.append("node \(id) ledger: \(problems.prefix(3))") }
        }
        if truth.encodeSnapshot() != reference {
            violations.append("the committed log applied once, in order, differs from the converged replicas")
        }
        // Every answer about every id, held to one serial history of its hold (the replicas are
        // byte for byte the same, so one ledger stands for all).
        let ledger = nodes[nodeIDs[0]]!.driver!.ledger
        let purgeable = { (finishesByMs: Int64) in self.lastCommittedTimeMs >= finishesByMs + self.limits.finishedRetentionMs }
        violations += histories.violations(
            final: { id in
                let reservation = ReservationID(id)
                return (ledger.hold(reservation).map(HoldView.init), Set(ledger.conflicts(of: reservation).map(\.replayed.token.rawValue)))
            }, purgeable: purgeable)
        for (id, history) in histories.histories {
            let final = ledger.hold(ReservationID(id))
            for grant in history.grants where grant.hold.path == "local" {
                if final?.token.rawValue == grant.hold.token { provisionalReconciled += 1 } else if final != nil { provisionalSuperseded += 1 }
            }
        }
        // A reserve answered as not written never took effect.
        for (id, command) in calls {
            guard case .reserve(let request) = command, reserveCalls[request.reservationId] == 1,
                case .rejected(let error, _)? = answers[id]?.first,
                [.quorumUnavailable, .notLeader, .unavailable, .overloaded].contains(error.code),
                committedReserves.contains(request.reservationId)
            else { continue }
            violations.append("reserve \(request.reservationId) was answered \(error.code.rawValue) but committed")
        }
    }

    /// Every `outcome_unknown` reserve resolved one way or the other: retried with the same id on
    /// the healed cluster, it returns the hold that committed, if one did.
    func checkRetries() {
        let unknown = calls.compactMap { id, command -> ReserveRequest? in
            guard case .reserve(let request) = command, reserveCalls[request.reservationId] == 1,
                case .rejected(let error, _)? = answers[id]?.first, error.code == .outcomeUnknown
            else { return nil }
            return request
        }
        guard !unknown.isEmpty, let leader = nodeIDs.first(where: { nodes[$0]!.driver!.raft.isLeader }) else { return }
        let ledger = nodes[leader]!.driver!.ledger
        var expected: [Int: Hold?] = [:]
        for request in unknown.sorted(by: { $0.reservationId.rawValue < $1.reservationId.rawValue }) {
            let before = committedReserves.contains(request.reservationId) ? ledger.hold(request.reservationId) : nil
            call(.reserve(request), on: leader)
            expected[nextCall] = before
        }
        for _ in 0..<200 where expected.keys.contains(where: { answers[$0] == nil }) {
            advance(lossless: true)
        }
        for (id, before) in expected {
            guard let answer = answers[id]?.first else {
                violations.append("retry \(id) of an outcome_unknown reserve was never answered")
                continue
            }
            guard let before else { continue }
            guard case .reservation(let hold, false) = answer, hold.token == before.token else {
                violations.append("retry of outcome_unknown reserve \(before.reservationId) answered \(answer), not its committed hold")
                continue
            }
        }
    }
}

/// An acknowledged reservation as the simulator's checker follows it.
public struct AcknowledgedHold: Sendable, Equatable {
    public var token: FencingToken
    public var allocations: [Allocation]
    public var expiresAtMs: Int64
    /// When a confirm or release finished it, once one was seen.
    public var finishedAtMs: Int64?

    init(_ hold: Hold) {
        token = hold.token
        allocations = hold.allocations
        expiresAtMs = hold.expiresAtMs
        finishedAtMs = hold.status.isFinished ? hold.finishedAtMs : nil
    }

    /// The latest time it finishes: its finish if known, its expiry otherwise.
    public var finishesByMs: Int64 { min(expiresAtMs, finishedAtMs ?? .max) }
}

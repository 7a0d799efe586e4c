import Ledger
import PropertyBased
import StockadeCore
import StockadeTesting
import Testing

/// Random command histories against the real ledger, with every invariant checked after every step.
@Suite struct LedgerPropertyTests {
    /// Runs one seeded history; returns the problems found (empty when sound).
    static func run(seed: UInt64, steps: Int = 300, allotments: Bool = false, localReserves: Bool = false) -> [String] {
        var limits = Limits()
        limits.finishedRetentionMs = 120_000  // short, so purging happens inside a history
        limits.expireBatchMax = 3  // small, so expiry needs several commands
        var generator = HistoryGenerator(seed: seed)
        generator.allotments = allotments
        generator.localReserves = localReserves
        var ledger = Ledger(limits: limits)
        var observer = LedgerObserver()
        var problems: [String] = []
        var history = generator.setup()
        for _ in 0..<steps { history.append(generator.next()) }
        let snapshotAt = Int.random(in: 0..<history.count, using: &generator.random)
        var snapshot: [UInt8] = []
        for (position, command) in history.enumerated() {
            problems += observer.step(&ledger, command).map { "step \(position) \(command.command.name): \($0)" }
            if position == snapshotAt { snapshot = ledger.encodeSnapshot() }
            if !problems.isEmpty { return problems }
        }
        let final = ledger.encodeSnapshot()
        // Determinism: replaying the same log gives the same state, byte for byte.
        var replica = Ledger(limits: limits)
        for (position, command) in observer.log.enumerated() {
            // Through the log's binary form, as recovery does.
            let decoded = try! TimedCommand(decoding: command.encoded(), limits: limits)
            if decoded != command { problems.append("command \(position) does not survive encoding") }
            _ = replica.apply(decoded, index: LogIndex(position + 1))
        }
        if replica.encodeSnapshot() != final { problems.append("replay reached a different state") }
        // A snapshot taken mid-history, restored and fed the rest of the log, reaches the same state.
        do {
            var restored = try Ledger(snapshot: snapshot, limits: limits)
            for position in (snapshotAt + 1)..<observer.log.count {
                _ = restored.apply(observer.log[position], index: LogIndex(position + 1))
            }
            if restored.encodeSnapshot() != final { problems.append("snapshot at \(snapshotAt) + replay diverged") }
        } catch {
            problems.append("snapshot does not decode: \(error)")
        }
        return problems
    }

    @Test func thousandsOfRandomHistoriesKeepEveryInvariant() async {
        await propertyCheck(count: 1_200, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            // Yield between histories: the cooperative pool is shared with tests that wait on real processes.
            await Task.yield()
            let problems = Self.run(seed: seed, allotments: seed % 2 == 0, localReserves: seed % 3 == 0)
            #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(5))")
        }
    }

    @Test func allotmentHistoriesActuallyExerciseTheCachePath() async {
        // Guards against a generator whose cache holds are all refused or never redelivered.
        var applied = 0
        var duplicates = 0
        var allotted: Int64 = 0
        for seed in UInt64(1)...50 {
            await Task.yield()
            var generator = HistoryGenerator(seed: seed)
            generator.allotments = true
            var ledger = Ledger()
            var observer = LedgerObserver()
            var history = generator.setup()
            for _ in 0..<300 { history.append(generator.next()) }
            for command in history { _ = observer.step(&ledger, command) }
            applied += observer.cacheApplied
            duplicates += observer.cacheDuplicates
            allotted += ledger.allotments.values.reduce(0) { $0 + $1.quantity }
        }
        #expect(applied > 100)
        #expect(duplicates > 10)
        #expect(allotted > 0)
    }

    @Test func localReserveHistoriesActuallyExerciseReconciliation() async {
        // Guards against a generator whose provisional holds are all refused or never replayed.
        var applied = 0
        var duplicates = 0
        var reserved: Int64 = 0
        for seed in UInt64(1)...60 {
            await Task.yield()
            var generator = HistoryGenerator(seed: seed)
            generator.localReserves = true
            var ledger = Ledger()
            var observer = LedgerObserver()
            var history = generator.setup()
            for _ in 0..<300 { history.append(generator.next()) }
            for command in history { _ = observer.step(&ledger, command) }
            applied += observer.localApplied
            duplicates += observer.localDuplicates
            reserved += ledger.allotments.filter { $0.key.holder.node != nil }.values.reduce(0) { $0 + $1.quantity }
        }
        #expect(applied > 30)
        #expect(duplicates > 5)
        #expect(reserved > 0)
    }

    @Test func historiesActuallyExerciseTheLedger() async {
        // Guards against a generator that only produces rejections.
        var grants = 0
        var confirms = 0
        var expiries = 0
        for seed in UInt64(1)...50 {
            await Task.yield()
            var generator = HistoryGenerator(seed: seed)
            var ledger = Ledger()
            var observer = LedgerObserver()
            var history = generator.setup()
            for _ in 0..<300 { history.append(generator.next()) }
            for command in history {
                _ = observer.step(&ledger, command)
            }
            grants += observer.grants
            confirms += observer.acknowledged.values.filter { $0.status == .confirmed }.count
            expiries += observer.acknowledged.values.filter { $0.status == .expired }.count
        }
        #expect(grants > 500)
        #expect(confirms > 50)
        #expect(expiries > 50)
    }
}

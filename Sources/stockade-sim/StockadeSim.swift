import ArgumentParser
import Foundation
import StockadeTesting

/// `stockade-sim`: runs the deterministic cluster simulator over a range of seeds, or replays one.
@main
struct StockadeSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockade-sim", abstract: "Run the seeded cluster simulator; a failure prints the seed that replays it.")

    @Option(help: "Replay exactly this seed and print what it did.") var seed: UInt64?
    @Option(help: "First seed of a range.") var start: UInt64 = 1
    @Option(help: "How many seeds to run.") var seeds: UInt64 = 10_000
    @Option(help: "Faulty steps per seed before healing.") var steps = 300
    @Option(help: "Worker threads.") var workers = 2
    @Flag(name: .customLong("announce"), help: "Name each seed on stderr before running it, so a crash names its seed.")
    var announce = false
    @Flag(help: "Stop at the first failing seed and say how many seeds it took (for planted bugs).")
    var untilFailure = false

    func run() throws {
        if let seed {
            let simulator = ClusterSimulator(seed: seed)
            let violations = simulator.run(steps: steps)
            print("seed \(seed): faults \(simulator.faults)")
            print("elections \(simulator.leaderElections), applied \(simulator.appliedEntries), acknowledged \(simulator.acknowledged.count)")
            print("local reserves \(simulator.localReserves), provisional grants \(simulator.localGrants), damaged local logs \(simulator.damagedLocalLogs), churn \(simulator.churn)")
            print("grants by path: " + simulator.grantsByPath.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if simulator.localReserves { print(simulator.localSummary()) }
            if let cache = simulator.cacheSummary { print("cache: \(cache)") }
            print("answers: " + simulator.answerCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if violations.isEmpty { print("ok") } else {
                for violation in violations { print("VIOLATION: \(violation)") }
                // The calls behind each reservation a violation names.
                let named = Set(violations.flatMap { violation in
                    violation.split(separator: " ").enumerated().compactMap { position, word in
                        position > 0 && violation.split(separator: " ")[position - 1] == "reservation" ? String(word.trimmingCharacters(in: CharacterSet(charactersIn: ":,"))) : nil
                    }
                })
                for id in named.sorted() {
                    print("reservation \(id):")
                    for line in simulator.trace(id) { print("  \(line)") }
                }
                throw ExitCode(1)
            }
            return
        }
        let tally = Tally()
        let began = Date()
        let group = DispatchGroup()
        for worker in 0..<UInt64(max(1, workers)) {
            group.enter()
            Thread.detachNewThread { [steps, start, seeds, workers, announce, untilFailure] in
                var seed = start + worker
                while seed < start + seeds && !(untilFailure && !tally.failed.isEmpty) {
                    if announce { FileHandle.standardError.write(Data("seed \(seed)\n".utf8)) }
                    let simulator = ClusterSimulator(seed: seed)
                    let violations = simulator.run(steps: steps)
                    let done = tally.record(
                        seed: seed, failed: !violations.isEmpty, localGrants: simulator.localGrants, paths: simulator.grantsByPath)
                    if !violations.isEmpty {
                        FileHandle.standardError.write(Data("FAIL seed \(seed): \(violations.prefix(3))\n".utf8))
                        print("FAIL seed \(seed): \(violations.prefix(3)) (replay: stockade-sim --seed \(seed))")
                    }
                    if done % 10_000 == 0 { print("\(done) seeds, \(tally.failed.count) failed, \(Int(Date().timeIntervalSince(began))) s") }
                    seed += UInt64(max(1, workers))
                }
                group.leave()
            }
        }
        group.wait()
        let failed = tally.failed
        print("\(tally.done) seeds from \(start): \(failed.count) failed in \(Int(Date().timeIntervalSince(began))) s; \(tally.localGrants) provisional grants")
        print("grants by path: " + tally.paths.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if untilFailure, let first = failed.min() { print("first failing seed \(first): caught within \(first - start + 1) seeds") }
        if !failed.isEmpty {
            print("failing seeds: \(failed.sorted())")
            throw ExitCode(1)
        }
    }
}

/// Counts finished and failed seeds across worker threads.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var doneCount = 0
    private var failedSeeds: [UInt64] = []
    private var grants = 0
    private var byPath: [String: Int] = [:]

    func record(seed: UInt64, failed: Bool, localGrants: Int, paths: [String: Int]) -> Int {
        lock.withLock {
            doneCount += 1
            grants += localGrants
            byPath.merge(paths, uniquingKeysWith: +)
            if failed { failedSeeds.append(seed) }
            return doneCount
        }
    }

    var done: Int { lock.withLock { doneCount } }
    var failed: [UInt64] { lock.withLock { failedSeeds } }
    var localGrants: Int { lock.withLock { grants } }
    var paths: [String: Int] { lock.withLock { byPath } }
}

import Ledger
import Logging
import ServiceLifecycle

/// Proposes expire-due commands when holds are due, so expired stock returns without any client call.
public struct ExpiryService: Service {
    let replica: any ReplicatedLedger
    let tickMs: Int
    let logger: Logger

    public init(replica: any ReplicatedLedger, tickMs: Int = 250, logger: Logger) {
        self.replica = replica
        self.tickMs = tickMs
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(tickMs))
            guard replica.mayPropose else { continue }
            let now = replica.clock()
            guard replica.read({ $0.hasWorkDue(atMs: now) }) else { continue }
            let outcome = await replica.propose(.expireDue)
            if case .expired(let count, let purged) = outcome, count + purged > 0 {
                logger.debug("expired holds", metadata: ["expired": "\(count)", "purged": "\(purged)"])
            }
        }
    }
}

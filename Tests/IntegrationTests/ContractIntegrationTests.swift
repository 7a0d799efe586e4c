import Foundation
import StockadeTesting
import Testing

/// docs/openapi.yaml is the contract: schemathesis (a client nobody here wrote) generates requests
/// from it, valid and invalid, and checks every answer against it (`--checks all`: statuses,
/// bodies, headers, content types, that invalid input is refused and valid input accepted, 405
/// with `Allow`, auth), then follows its links through reserve → read/confirm/release/extend. It
/// runs against a real node through scripts/contract/run.sh, and must find nothing.
@Suite(.serialized, .timeLimit(.minutes(10))) struct ContractIntegrationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func schemathesisFindsNothingAgainstARealNode() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let run = try await ChildProcess.run(
            "bash", [Self.root + "/scripts/contract/run.sh", "http://127.0.0.1:\(node.port)", node.adminToken],
            timeout: .seconds(480))
        // The summary names the failures; the whole report is long, so show its end.
        let report = run.output.split(separator: "\n", omittingEmptySubsequences: false).suffix(120).joined(separator: "\n")
        #expect(run.status == 0, "schemathesis exited \(run.status):\n\(report)")
        let passed = run.output.contains(" passed")
        #expect(passed, "no test cases ran:\n\(report)")
        #expect(node.exitStatus == nil, "the node died: \(node.logTail())")
    }
}

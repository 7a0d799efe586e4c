// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Stockade",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stockade-node", targets: ["stockade-node"]),
        .executable(name: "stockade-load", targets: ["stockade-load"]),
        .executable(name: "stockadectl", targets: ["stockadectl"]),
        .executable(name: "stockade-orders", targets: ["stockade-orders"]),
        .library(name: "StockadeClient", targets: ["StockadeClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // Already built for Hummingbird; SHA-256, HMAC and SHA-1 come from here, not from code of our own.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Already built for Hummingbird's TLS and its test client; TLS on HTTP, RESP and peer links.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Value types, limits and error codes. Depends on nothing.
        .target(name: "StockadeCore"),
        // The deterministic ledger state machine.
        .target(
            name: "Ledger",
            dependencies: [
                "StockadeCore",
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: optimizedEvenInDebug
        ),
        // The pure replication protocol (Raft with pre-vote and check-quorum): events in, actions out.
        .target(name: "Consensus", dependencies: ["StockadeCore"], swiftSettings: optimizedEvenInDebug),
        // One replica's decisions as a pure driver, run by the node's shell and by the simulator.
        .target(
            name: "Replication",
            dependencies: ["StockadeCore", "Ledger", "Consensus", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: optimizedEvenInDebug + specializedAcrossModules
        ),
        // The Redis serialization protocol (RESP2/RESP3): values, a bounded parser, NIO decoders. NIOCore only.
        .target(name: "RESP", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "RESP", "API", "StockadeCore", "Ledger", "Node",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Peer frame codecs: versioned, length-prefixed, bounded.
        .target(
            name: "Wire",
            dependencies: [
                "StockadeCore", "Consensus", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "WireTests",
            dependencies: [
                "Wire", "Consensus", "StockadeCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // Durable command log and snapshots with group commit.
        .target(name: "Storage", dependencies: ["StockadeCore"]),
        // The node runtime that sequences commands through the log into the ledger.
        .target(
            name: "Node",
            dependencies: [
                "StockadeCore", "Ledger", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The cluster runtime: the protocol driven over the log, the ledger and a TCP peer transport.
        .target(
            name: "Cluster",
            dependencies: [
                "StockadeCore", "Ledger", "Storage", "Node", "Consensus", "Replication", "Wire", "StockadeTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // HTTP API: router, middleware, error mapping, forwarding to the leader.
        .target(
            name: "API",
            dependencies: [
                "StockadeCore", "Ledger", "Node", "StockadeClient", "RESP", "StockadeTLS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Client library: typed calls over RESP (pipelined) or HTTP/1.1 keep-alive, on SwiftNIO.
        .target(
            name: "StockadeClient",
            dependencies: [
                "StockadeCore", "RESP", "StockadeTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // TLS contexts from PEM files, for the node's listeners and for clients (swift-nio-ssl).
        .target(
            name: "StockadeTLS",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .executableTarget(
            name: "stockade-node",
            dependencies: [
                "StockadeCore", "Ledger", "Storage", "Node", "API", "Cluster", "Consensus", "Replication", "Wire", "HotStock", "StockadeTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The admin CLI's commands, output and checks (docs/stockadectl.md); `stockadectl` runs them.
        .target(
            name: "StockadeCtl",
            dependencies: [
                "StockadeClient", "StockadeCore", "Ledger",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "stockadectl", dependencies: ["StockadeCtl"]),
        .testTarget(name: "StockadeCtlTests", dependencies: ["StockadeCtl", "StockadeClient", "StockadeCore"]),
        // The system SQLite (Debian's libsqlite3-dev), for the order pipeline's own state.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The order pipeline: channel adapters, the order lifecycle, its SQLite store, the ingest (docs/orders.md).
        .target(name: "OrderPipeline", dependencies: ["CSQLite", "StockadeClient", "StockadeCore"]),
        .executableTarget(
            name: "stockade-orders",
            dependencies: [
                "OrderPipeline", "StockadeClient", "StockadeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "OrderPipelineTests", dependencies: ["OrderPipeline", "StockadeClient", "StockadeCore"]),
        // hiredis, the C Redis client (Debian's libhiredis-dev).
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The Redis hot path: client pool, gate scripts, decrement-stream consumer (docs/hot-path.md).
        .target(
            name: "HotStock",
            dependencies: [
                "CHiredis", "StockadeCore", "Ledger", "Node",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Test support: history generators, invariant checks, real-process launcher.
        // Lua 5.1 (Redis's scripting version), for the simulator's Redis: tests and tools only.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.1", providers: [.apt(["liblua5.1-0-dev"])]),
        .target(
            name: "StockadeTesting",
            dependencies: ["StockadeCore", "Ledger", "Consensus", "Replication", "StockadeClient", "StockadeTLS", "HotStock", "CLua"],
            swiftSettings: optimizedEvenInDebug
        ),
        .testTarget(
            name: "ConsensusTests",
            dependencies: ["StockadeCore", "Consensus", "Ledger", "Replication", "StockadeTesting"]
        ),
        // Runs the cluster simulator over ranges of seeds, or replays one.
        .executableTarget(
            name: "stockade-sim",
            dependencies: [
                "StockadeTesting", "StockadeCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "Cluster", "Consensus", "Replication", "Wire", "StockadeTesting", "Ledger", "Node", "StockadeCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "HotStockTests",
            dependencies: [
                "HotStock", "Ledger", "StockadeCore", "StockadeTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "LedgerTests",
            dependencies: [
                "StockadeCore", "Ledger", "StockadeTesting",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["StockadeCore", "Ledger", "Storage", "Node"]
        ),
        .testTarget(
            name: "APITests",
            dependencies: [
                "StockadeCore", "Ledger", "Storage", "Node", "API",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["StockadeCore", "StockadeClient", "StockadeTesting", "stockade-node", "stockade-load", "stockadectl", "stockade-orders", "OrderPipeline"]
        ),
        // The load-test harness: scenarios, trace generator, open/closed-loop runner, verdict, reports.
        .target(
            name: "LoadHarness",
            dependencies: [
                "StockadeCore", "StockadeClient", "StockadeTesting",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            path: "LoadTests/Sources/LoadHarness"
        ),
        .executableTarget(
            name: "stockade-load",
            dependencies: ["LoadHarness", "StockadeTesting", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "LoadTests/Sources/stockade-load"
        ),
        .testTarget(
            name: "LoadHarnessTests",
            dependencies: ["LoadHarness", "StockadeCore"],
            path: "LoadTests/Tests/LoadHarnessTests"
        ),
    ]
)

/// The deterministic core (ledger, protocol, driver, simulator) is optimized in debug builds too:
/// the test suite runs thousands of simulated clusters and property histories through it, and at
/// -Onone that work starved the real-process tests running beside it on a 2-core machine.
/// Preconditions still hold in optimized code; the core asserts with `precondition`.
var optimizedEvenInDebug: [SwiftSetting] { [.unsafeFlags(["-O"], .when(configuration: .debug))] }
// `ReplicaDriver<Caller>` is generic over its callers, which the shell and the simulator define in
// their own modules. Without cross-module optimization its methods run unspecialized there
// (runtime generic metadata lookups and value-witness copies on every turn); see docs/decisions.md.
var specializedAcrossModules: [SwiftSetting] { [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))] }

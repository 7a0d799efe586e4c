import RESP

/// What the RESP server knows of each command it serves: arity, key positions and flags (as
/// `COMMAND` reports them), and which role may call it.
struct RESPCommandSpec: Sendable {
    /// Upper case, as matched.
    var name: String
    /// Redis's convention: n means exactly n arguments with the name, -n at least n.
    var arity: Int
    var flags: [String]
    var firstKey: Int
    var lastKey: Int
    var keyStep: Int
    /// nil: housekeeping, served before authentication.
    var role: Role?
    var summary: String

    func acceptsArgumentCount(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }
}

/// Every command the RESP server answers.
enum RESPCommandTable {
    static let commands: [RESPCommandSpec] = [
        // Stockade's own, with the HTTP API's roles.
        .init(name: "RESERVE", arity: -8, flags: ["write"], firstKey: 6, lastKey: -2, keyStep: 2, role: .checkout,
              summary: "RESERVE id orderId region ttlSeconds allowSplit sku qty [sku qty ...]: hold stock for an order"),
        .init(name: "CONFIRM", arity: 2, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .checkout,
              summary: "CONFIRM id: the order is paid; its held units become sold"),
        .init(name: "RELEASE", arity: 2, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .checkout,
              summary: "RELEASE id: give the held units back"),
        .init(name: "EXTEND", arity: 3, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .checkout,
              summary: "EXTEND id ttlSeconds: the hold now expires ttlSeconds from now"),
        .init(name: "RESERVATION", arity: -2, flags: ["readonly"], firstKey: 1, lastKey: 1, keyStep: 1, role: .checkout,
              summary: "RESERVATION id [CONSISTENCY local]: read a reservation"),
        .init(name: "SKU", arity: -2, flags: ["readonly"], firstKey: 1, lastKey: 1, keyStep: 1, role: .checkout,
              summary: "SKU sku [CONSISTENCY local]: stock rows of a SKU"),
        .init(name: "WAREHOUSES", arity: 1, flags: ["readonly"], firstKey: 0, lastKey: 0, keyStep: 0, role: .checkout,
              summary: "WAREHOUSES: the warehouse layout in priority order"),
        .init(name: "CLUSTERINFO", arity: 1, flags: ["readonly"], firstKey: 0, lastKey: 0, keyStep: 0, role: .checkout,
              summary: "CLUSTERINFO: this node's view of the cluster and the cache"),
        .init(name: "STOCK.SET", arity: 4, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .admin,
              summary: "STOCK.SET sku warehouse total: set a stock row's physical total"),
        .init(name: "STOCK.ADJUST", arity: 5, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .admin,
              summary: "STOCK.ADJUST sku warehouse delta reason: add to or take from a stock row's total"),
        .init(name: "SKU.HOT", arity: 2, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .admin,
              summary: "SKU.HOT sku: sell the SKU from the Redis cache"),
        .init(name: "SKU.COOL", arity: 2, flags: ["write"], firstKey: 1, lastKey: 1, keyStep: 1, role: .admin,
              summary: "SKU.COOL sku: stop selling the SKU from the cache"),
        .init(name: "HOLDS", arity: -2, flags: ["readonly"], firstKey: 1, lastKey: 1, keyStep: 1, role: .admin,
              summary: "HOLDS sku|* [ORDER orderId] [STATUS s] [LIMIT n] [CURSOR c] [EXPIRING seconds] [CONSISTENCY local]: list holds"),
        .init(name: "AUDIT", arity: -1, flags: ["readonly"], firstKey: 0, lastKey: 0, keyStep: 0, role: .admin,
              summary: "AUDIT [sku]: cross-check the ledger's rows, the cache and provisional holds on this node"),
        .init(name: "STATS", arity: 1, flags: ["readonly"], firstKey: 0, lastKey: 0, keyStep: 0, role: .admin,
              summary: "STATS: reservations by outcome, the cache, the fallback and the busiest SKUs on this node"),
        // Housekeeping that clients send on connect.
        .init(name: "HELLO", arity: -1, flags: ["fast", "no-auth"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "HELLO [2|3] [AUTH user token] [SETNAME name]: handshake"),
        .init(name: "AUTH", arity: -2, flags: ["fast", "no-auth"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "AUTH [user] token: authenticate with a bearer token"),
        .init(name: "PING", arity: -1, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil, summary: "PING [message]"),
        .init(name: "ECHO", arity: 2, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: .checkout, summary: "ECHO message"),
        .init(name: "QUIT", arity: -1, flags: ["fast", "no-auth"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "QUIT: close the connection"),
        .init(name: "RESET", arity: 1, flags: ["fast", "no-auth"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "RESET: back to RESP2, unauthenticated, no name"),
        .init(name: "SELECT", arity: 2, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: .checkout,
              summary: "SELECT 0: there is one database"),
        .init(name: "CLIENT", arity: -2, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "CLIENT SETNAME|GETNAME|SETINFO|ID|INFO"),
        .init(name: "INFO", arity: -1, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "INFO [section]: server, persistence, stockade"),
        .init(name: "CONFIG", arity: -3, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: .checkout,
              summary: "CONFIG GET parameter: save and appendonly, as clients ask on connect"),
        .init(name: "COMMAND", arity: -1, flags: ["fast"], firstKey: 0, lastKey: 0, keyStep: 0, role: nil,
              summary: "COMMAND [COUNT|INFO|DOCS]: the commands this server answers"),
    ]

    static let byName: [String: RESPCommandSpec] = Dictionary(uniqueKeysWithValues: commands.map { ($0.name, $0) })

    /// `COMMAND` / `COMMAND INFO` entry, in Redis 7's ten-field layout.
    static func info(_ spec: RESPCommandSpec) -> RESPValue {
        .array([
            .bulk(spec.name.lowercased()), .integer(Int64(spec.arity)),
            .set(spec.flags.map { .simpleString($0) }),
            .integer(Int64(spec.firstKey)), .integer(Int64(spec.lastKey)), .integer(Int64(spec.keyStep)),
            .set([.simpleString(spec.role == nil ? "@connection" : "@stockade")]),
            .set([]), .array([]), .array([]),
        ])
    }

    /// `COMMAND DOCS` entry value.
    static func docs(_ spec: RESPCommandSpec) -> RESPValue {
        .map([
            RESPPair("summary", .bulk(spec.summary)),
            RESPPair("since", .bulk("1.0.0")),
            RESPPair("group", .bulk(spec.role == nil ? "connection" : "stockade")),
        ])
    }
}

import Foundation

/// The pipeline's own state in SQLite (`orders.db` in the data directory): each order's record,
/// the exceptions noted, and the units each pre-sale SKU has accepted. Everything one update of
/// one order changes is written in one transaction, after Stockade has answered; a rerun after a
/// crash repeats the update, and Stockade's answers to a repeated reservation id are the first
/// answers, so nothing is held twice or left behind.
public final class OrderStore: @unchecked Sendable {
    private let database: SQLiteDatabase
    private let lock = NSLock()
    private let selectOrder: SQLiteDatabase.Statement
    private let upsertOrder: SQLiteDatabase.Statement
    private let insertException: SQLiteDatabase.Statement
    private let upsertPresale: SQLiteDatabase.Statement
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// Opens (creating if needed) the store in `directory`. `durable`: every commit is fsynced
    /// (the webhook answers only after its commit); otherwise the WAL is synced at checkpoints,
    /// which survives a killed process (the feeds can be ingested again after a power loss).
    public init(directory: String, durable: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        database = try SQLiteDatabase(path: directory + "/orders.db")
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=\(durable ? "FULL" : "NORMAL")")
        try database.execute(
            """
            CREATE TABLE IF NOT EXISTS orders (key TEXT PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS exceptions (
              id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, order_key TEXT, source TEXT NOT NULL, reason TEXT NOT NULL,
              UNIQUE (kind, source, reason));
            CREATE TABLE IF NOT EXISTS presale (sku TEXT PRIMARY KEY, used INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
            """)
        selectOrder = try database.prepare("SELECT body FROM orders WHERE key = ?1")
        upsertOrder = try database.prepare(
            "INSERT INTO orders (key, state, body) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET state = excluded.state, body = excluded.body")
        insertException = try database.prepare("INSERT OR IGNORE INTO exceptions (kind, order_key, source, reason) VALUES (?1, ?2, ?3, ?4)")
        upsertPresale = try database.prepare(
            "INSERT INTO presale (sku, used) VALUES (?1, ?2) ON CONFLICT(sku) DO UPDATE SET used = excluded.used")
    }

    public func order(_ key: String) throws -> OrderRecord? {
        try locked {
            guard let body = try selectOrder.run([.text(key)]).first?.first??.text else { return nil }
            return try decoder.decode(OrderRecord.self, from: Data(body.utf8))
        }
    }

    /// Writes orders, exceptions and pre-sale counts together.
    public func save(orders: [OrderRecord], exceptions: [OrderException], presale: [String: Int64] = [:]) throws {
        try locked {
            try database.transaction {
                for record in orders {
                    let body = String(decoding: try encoder.encode(record), as: UTF8.self)
                    try upsertOrder.run([.text(record.key), .text(record.state.rawValue), .text(body)])
                }
                for exception in exceptions {
                    try insertException.run([.text(exception.kind.rawValue), exception.orderKey.map { .text($0) }, .text(exception.source), .text(exception.reason)])
                }
                for (sku, used) in presale { try upsertPresale.run([.text(sku), .integer(used)]) }
            }
        }
    }

    /// Keeps a webhook's order update until it is processed; on return it is on disk (with a
    /// durable store) and the sender may be told so. Returns its inbox number.
    public func accept(_ body: String) throws -> Int64 {
        try locked {
            try database.transaction {
                try database.prepare("INSERT INTO inbox (body) VALUES (?1)").run([.text(body)])
                return try database.prepare("SELECT last_insert_rowid()").run().first?.first??.integer ?? 0
            }
        }
    }

    /// Accepted updates not yet processed, oldest first.
    public func inbox(limit: Int) throws -> [(seq: Int64, body: String)] {
        try locked {
            try database.prepare("SELECT seq, body FROM inbox WHERE done = 0 ORDER BY seq LIMIT ?1").run([.integer(Int64(limit))]).compactMap { row in
                guard let seq = row[0]?.integer, let body = row[1]?.text else { return nil }
                return (seq, body)
            }
        }
    }

    public func markProcessed(_ seqs: [Int64]) throws {
        try locked {
            try database.transaction {
                let statement = try database.prepare("UPDATE inbox SET done = 1 WHERE seq = ?1")
                for seq in seqs { try statement.run([.integer(seq)]) }
            }
        }
    }

    public func allOrders() throws -> [OrderRecord] {
        try locked {
            try database.prepare("SELECT body FROM orders ORDER BY key").run().compactMap { row in
                guard let body = row.first??.text else { return nil }
                return try decoder.decode(OrderRecord.self, from: Data(body.utf8))
            }
        }
    }

    public func exceptions() throws -> [OrderException] {
        try locked {
            try database.prepare("SELECT kind, order_key, source, reason FROM exceptions ORDER BY id").run().compactMap { row in
                guard let kind = row[0]?.text.flatMap(OrderException.Kind.init(rawValue:)), let source = row[2]?.text, let reason = row[3]?.text
                else { return nil }
                return OrderException(kind: kind, orderKey: row[1]?.text, source: source, reason: reason)
            }
        }
    }

    public func presaleUsed() throws -> [String: Int64] {
        try locked {
            var used: [String: Int64] = [:]
            for row in try database.prepare("SELECT sku, used FROM presale").run() {
                if let sku = row[0]?.text, let count = row[1]?.integer { used[sku] = count }
            }
            return used
        }
    }

    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

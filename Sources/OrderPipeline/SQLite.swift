import CSQLite
import Foundation

/// A small wrapper over the system SQLite: one connection, statements, transactions. Not
/// thread-safe; `OrderStore` serialises access.
final class SQLiteDatabase {
    private var handle: OpaquePointer?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw Failure(description: "cannot open \(path): \(message)")
        }
        sqlite3_busy_timeout(handle, 5_000)
    }

    deinit { sqlite3_close(handle) }

    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw Failure(description: "\(message) in: \(sql.prefix(80))")
        }
    }

    func prepare(_ sql: String) throws -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw Failure(description: "\(String(cString: sqlite3_errmsg(handle))) in: \(sql.prefix(80))")
        }
        return Statement(statement, database: self)
    }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs `body` in one transaction: all of it is written, or none.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    final class Statement {
        private let statement: OpaquePointer
        private unowned let database: SQLiteDatabase
        private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

        init(_ statement: OpaquePointer, database: SQLiteDatabase) {
            self.statement = statement
            self.database = database
        }

        deinit { sqlite3_finalize(statement) }

        /// Binds values to `?1…` and runs until done; the rows are returned (columns as text or integers).
        @discardableResult
        func run(_ values: [Value?] = []) throws -> [[Value?]] {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
            for (index, value) in values.enumerated() {
                let position = Int32(index + 1)
                switch value {
                case nil: sqlite3_bind_null(statement, position)
                case .integer(let number)?: sqlite3_bind_int64(statement, position, number)
                case .text(let text)?: sqlite3_bind_text(statement, position, text, -1, Self.transient)
                }
            }
            var rows: [[Value?]] = []
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else { throw Failure(description: database.lastError) }
                var row: [Value?] = []
                for column in 0..<sqlite3_column_count(statement) {
                    switch sqlite3_column_type(statement, column) {
                    case SQLITE_NULL: row.append(nil)
                    case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                    default: row.append(.text(String(cString: sqlite3_column_text(statement, column))))
                    }
                }
                rows.append(row)
            }
            return rows
        }
    }

    enum Value: Hashable {
        case integer(Int64)
        case text(String)

        var text: String? {
            if case .text(let value) = self { return value }
            return nil
        }
        var integer: Int64? {
            if case .integer(let value) = self { return value }
            return nil
        }
    }
}

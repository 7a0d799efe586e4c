import ArgumentParser
import Foundation
import Ledger
import StockadeClient
import StockadeCore

struct SKUCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sku", abstract: "Show and change a SKU's stock, and whether the cache sells it.",
        subcommands: [Show.self, SetStock.self, Adjust.self, Hot.self, Cool.self, Import.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per warehouse: total, held, sold, allotted (to the cache and to local reserves) and available.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The SKU.") var sku: String
        @Flag(help: "Read this node's applied state, possibly stale, instead of the leader's.") var local = false

        func run() async throws {
            let format = try connection.format
            let (data, warehouses) = try await withClient(connection) { client in
                (
                    try await client.data(.sku(sku, consistency: local ? .local : .linearizable)),
                    format == .wide ? try await client.warehouses() : []
                )
            }
            if format == .json { return try printJSON(data) }
            say(render(try decode(SKUStock.self, data), warehouses: format == .wide ? warehouses : nil, terminal: .current))
        }
    }

    struct SetStock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-stock", abstract: "Set a stock row's physical total.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The SKU.") var sku: String
        @Option(help: "The warehouse.") var warehouse: String
        @Option(help: "The new physical total.") var total: Int64

        func run() async throws {
            try await change(connection) { try await $0.data(.setStock(sku: sku, warehouse: warehouse, total: total)) }
        }
    }

    struct Adjust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add to (or, negative, take from) a stock row's total.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The SKU.") var sku: String
        @Option(help: "The warehouse.") var warehouse: String
        @Option(help: "Units to add; negative to take away (write --delta=-3).") var delta: Int64
        @Option(help: "Why (kept with the change): damaged, recount, …") var reason: String

        func validate() throws {
            if delta == 0 { throw ValidationError("--delta must not be 0") }
        }

        func run() async throws {
            try await change(connection) { try await $0.data(.adjustStock(sku: sku, warehouse: warehouse, delta: delta, reason: reason)) }
        }
    }

    struct Hot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sell the SKU from the Redis cache.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The SKU.") var sku: String

        func run() async throws { try await change(connection) { try await $0.data(.setHot(sku, true)) } }
    }

    struct Cool: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop selling the SKU from the cache; its allotment returns to the ledger.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The SKU.") var sku: String

        func run() async throws { try await change(connection) { try await $0.data(.setHot(sku, false)) } }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set many stock totals from a CSV file (sku,warehouse,total).",
            discussion: """
                The whole file is checked first: its format, every identifier and total, repeated rows, and that every \
                warehouse exists and no new total is below what the row has committed (held + sold + allotted). If \
                anything is wrong, every problem is printed and nothing is applied. With --dry-run it stops there and \
                prints what would change. Rows are then applied in file order, each one durable when answered; if the \
                node refuses one (a sale committed more units meanwhile), the import stops and says which rows went in.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The CSV file.") var file: String
        @Flag(name: .customLong("dry-run"), help: "Check and show the changes; apply nothing.") var dryRun = false

        func run() async throws {
            let format = try connection.format
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError.usage("cannot read \(file)") }
            guard let text = String(data: data, encoding: .utf8) else { throw CLIError.usage("\(file) is not UTF-8 text") }
            let limits = Limits.default
            let result = try await withClient(connection) { client -> ImportResult in
                let warehouses = Set(try await client.warehouses().map(\.id))
                var result = ImportResult(file: StockCSV(text, limits: limits, warehouses: warehouses), dryRun: dryRun)
                guard result.file.problems.isEmpty else { return result }
                // The rows as they stand, to show the change and to catch totals below what is committed.
                var current: [String: SKUStock] = [:]
                for sku in Set(result.file.rows.map(\.sku)).sorted() {
                    do {
                        current[sku] = try await client.sku(sku)
                    } catch let error as StockadeError where error.code == .unknownSKU {}
                }
                for row in result.file.rows {
                    let before = current[row.sku]?.warehouses.first { $0.warehouse == row.warehouse }
                    let committed = before.map { $0.held + $0.sold + $0.allotted } ?? 0
                    if row.total < committed {
                        result.file.problems.append(
                            .init(line: row.line, message: "\(row.sku) at \(row.warehouse): total \(row.total) is below the \(committed) units committed"))
                    }
                    result.changes.append(.init(row: row, before: before?.total))
                }
                guard result.file.problems.isEmpty, !dryRun else { return result }
                for (index, row) in result.file.rows.enumerated() {
                    do {
                        _ = try await client.setStock(sku: row.sku, warehouse: row.warehouse, total: row.total)
                        result.applied = index + 1
                    } catch let error as StockadeError {
                        result.failure = "line \(row.line): \(error.code.rawValue): \(error.message)"
                        break
                    }
                }
                return result
            }
            result.report(format: format, terminal: .current)
            if !result.file.problems.isEmpty || result.failure != nil { throw CLIError.problemsReported }
        }
    }
}

struct ImportResult {
    struct Change {
        var row: StockCSV.Row
        var before: Int64?
    }
    var file: StockCSV
    var dryRun: Bool
    var changes: [Change] = []
    var applied = 0
    var failure: String?

    func report(format: OutputFormat, terminal: Terminal) {
        if format == .json {
            let value = JSONValue.object([
                "rows": .integer(Int64(file.rows.count)), "dryRun": .bool(dryRun), "applied": .integer(Int64(applied)),
                "problems": .array(file.problems.map { .object(["line": .integer(Int64($0.line)), "message": .string($0.message)]) }),
                "failure": failure.map(JSONValue.string) ?? .null,
                "changes": .array(
                    changes.map {
                        .object([
                            "line": .integer(Int64($0.row.line)), "sku": .string($0.row.sku), "warehouse": .string($0.row.warehouse),
                            "before": $0.before.map(JSONValue.integer) ?? .null, "total": .integer($0.row.total),
                        ])
                    }),
            ])
            say(value.rendered())
            return
        }
        if !file.problems.isEmpty {
            for problem in file.problems { warn(terminal.paint("\(problem)", .red)) }
            warn("\(file.problems.count) problem\(file.problems.count == 1 ? "" : "s"); nothing was applied")
            return
        }
        var table = Table(["LINE", "SKU", "WAREHOUSE", "BEFORE", "TOTAL"], rightAligned: [0, 3, 4])
        for change in changes where format == .wide || dryRun || changes.count <= 50 {
            table.add([String(change.row.line), change.row.sku, change.row.warehouse, change.before.map(String.init) ?? "new", String(change.row.total)])
        }
        if !table.rows.isEmpty { say(table.rendered(terminal: terminal)) }
        if dryRun {
            say("dry run: \(changes.count) rows checked, nothing applied")
        } else if let failure {
            warn(terminal.paint("stopped at \(failure)", .red))
            warn("\(applied) of \(changes.count) rows were applied (lines up to \(applied > 0 ? String(changes[applied - 1].row.line) : "none"))")
        } else {
            say("\(applied) rows applied")
        }
    }
}

/// A stock change answers the SKU's rows.
func change(_ connection: ConnectionOptions, _ call: @Sendable (StockadeClient) async throws -> Data) async throws {
    let format = try connection.format
    let data = try await withClient(connection, call)
    if format == .json { return try printJSON(data) }
    say(render(try decode(SKUStock.self, data), warehouses: nil, terminal: .current))
}

func render(_ stock: SKUStock, warehouses: [WarehouseInfo]?, terminal: Terminal) -> String {
    let wide = warehouses != nil
    var table = Table(
        ["WAREHOUSE", "TOTAL", "HELD", "SOLD", "ALLOTTED", "CACHE", "LOCAL", "AVAILABLE"] + (wide ? ["RESERVE OWNER", "REGIONS"] : []),
        rightAligned: [1, 2, 3, 4, 5, 6, 7])
    let byID = Dictionary((warehouses ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    for row in stock.warehouses {
        let allotted = row.allottedTo ?? [:]
        let local = allotted.filter { $0.key != "cache" }
        var cells = [
            row.warehouse, grouped(row.total), grouped(row.held), grouped(row.sold), grouped(row.allotted), grouped(allotted["cache"] ?? 0),
            grouped(local.values.reduce(0, +)), row.available > 0 ? grouped(row.available) : terminal.paint(grouped(row.available), .red),
        ]
        if wide {
            cells += [local.keys.sorted().joined(separator: ",").isEmpty ? "-" : local.keys.sorted().joined(separator: ","),
                      byID[row.warehouse]?.regions.joined(separator: ",") ?? ""]
        }
        table.add(cells)
    }
    let header = "\(terminal.paint(stock.sku, .bold))  hot: \(stock.hot ? terminal.paint("yes", .cyan) : "no")"
    return header + "\n" + table.rendered(terminal: terminal)
}

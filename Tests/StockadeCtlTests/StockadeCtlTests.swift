import Foundation
import StockadeClient
import StockadeCore
import Testing

@testable import StockadeCtl

@Suite struct DurationTests {
    @Test func parsesWhatOperatorsType() {
        #expect(Durations.parse("90s") == 90_000)
        #expect(Durations.parse("10m") == 600_000)
        #expect(Durations.parse("1h30m") == 5_400_000)
        #expect(Durations.parse("500ms") == 500)
        #expect(Durations.parse("2d") == 172_800_000)
        #expect(Durations.parse("45") == 45_000, "a bare number is seconds")
        #expect(Durations.parse(" 1m 30s ") == nil, "no spaces inside")
        for bad in ["", "s", "10x", "-5s", "1.5s", "m10", "99999999999999999999s"] { #expect(Durations.parse(bad) == nil, "\(bad)") }
    }

    @Test func formatsTheTwoLargestUnits() {
        #expect(Durations.format(milliseconds: 850) == "850ms")
        #expect(Durations.format(milliseconds: 45_000) == "45s")
        #expect(Durations.format(milliseconds: 898_000) == "14m58s")
        #expect(Durations.format(milliseconds: 7_380_000) == "2h03m")
        #expect(Durations.format(milliseconds: 273_600_000) == "3d04h")
        #expect(Durations.format(milliseconds: -3_000) == "-3s")
        for ms: Int64 in [1_000, 61_000, 600_000, 3_600_000] {
            #expect(Durations.parse(Durations.format(milliseconds: ms)) == ms, "round trip \(ms)")
        }
    }
}

@Suite struct JSONValueTests {
    @Test func keepsEveryNumberAndPrintsKeysSorted() throws {
        let text = #"{"b":[1,-2,18446744073709551615,0.5,true,null,"x\"y"],"a":{"z":{},"y":[]}}"#
        let value = try JSONValue.parse(Data(text.utf8))
        #expect(value["b"] == .array([.integer(1), .integer(-2), .unsigned(UInt64.max), .double(0.5), .bool(true), .null, .string("x\"y")]))
        let printed = value.rendered()
        #expect(printed.hasPrefix("{\n  \"a\""), "\(printed)")
        #expect(try JSONValue.parse(Data(printed.utf8)) == value, "printing loses nothing")
    }
}

@Suite struct StockCSVTests {
    let warehouses: Set<String> = ["yiwu", "guangzhou"]

    @Test func readsQuotedFieldsAndReportsEveryProblemWithItsLine() {
        let good = StockCSV("\u{FEFF}sku,warehouse,total\r\ntee,yiwu,10\n\"mug, large\",guangzhou, 5 \n\n", limits: .default, warehouses: warehouses)
        #expect(good.problems.isEmpty, "\(good.problems)")
        #expect(good.rows.map(\.sku) == ["tee", "mug, large"])
        #expect(good.rows.map(\.total) == [10, 5])
        #expect(good.rows.map(\.line) == [2, 3])

        let bad = StockCSV(
            """
            sku,warehouse,total
            tee,yiwu,ten
            tee,mars,1
            cap,yiwu,-1
            tee,guangzhou,3
            tee,guangzhou,4
            a,b
            "open,yiwu,1
            """, limits: .default, warehouses: warehouses)
        #expect(bad.rows.count == 1, "only line 5 is sound: \(bad.rows)")
        let byLine = Dictionary(grouping: bad.problems, by: \.line)
        #expect(byLine[2]?.first?.message == "total must be a whole number, not ten")
        #expect(byLine[3]?.first?.message == "unknown warehouse mars")
        #expect(byLine[4]?.first?.message.contains("total must be between") == true)
        #expect(byLine[6]?.first?.message == "tee at guangzhou is already set on line 5")
        #expect(byLine[7]?.first?.message == "expected 3 fields (sku,warehouse,total), found 2")
        #expect(byLine[8]?.first?.message == "a quoted field is not closed")
    }

    @Test func refusesAFileWithoutItsHeaderOrRows() {
        #expect(StockCSV("tee,yiwu,1\n", limits: .default).problems.first?.message == "the header must be sku,warehouse,total")
        #expect(StockCSV("", limits: .default).problems.count == 1)
        #expect(StockCSV("sku,warehouse,total\n", limits: .default).problems.first?.message == "no rows after the header")
        var limits = Limits.default
        limits.importRowsMax = 2
        #expect(StockCSV("sku,warehouse,total\na,w,1\nb,w,1\nc,w,1\n", limits: limits).problems.first?.message.contains("more than 2 rows") == true)
        let control = StockCSV("sku,warehouse,total\nte\u{7}e,yiwu,1\n", limits: .default)
        #expect(control.problems.first?.message == "sku contains control characters")
    }
}

@Suite struct TableTests {
    @Test func alignsColumnsIgnoringColourAndCountingWideCharacters() {
        var table = Table(["SKU", "HELD"], rightAligned: [1])
        table.add(["\u{1B}[33mtee\u{1B}[0m", "5"])
        table.add(["义乌袜子", "120"])
        #expect(table.rendered() == "SKU       HELD\n\u{1B}[33mtee\u{1B}[0m          5\n义乌袜子   120")
        #expect(grouped(1_234_567) == "1,234,567")
        #expect(grouped(-1_000) == "-1,000")
        #expect(grouped(12) == "12")
    }
}

@Suite struct ArgumentTests {
    @Test func connectionFlagsMayComeBeforeTheCommand() {
        #expect(
            Stockadectl.hoistingConnectionFlags(["--server", "h:1", "-o", "json", "holds", "show", "x"])
                == ["holds", "show", "x", "--server", "h:1", "-o", "json"])
        #expect(Stockadectl.hoistingConnectionFlags(["--token=t", "audit"]) == ["audit", "--token=t"])
        #expect(Stockadectl.hoistingConnectionFlags(["holds", "list", "--sku", "a"]) == ["holds", "list", "--sku", "a"])
        #expect(Stockadectl.hoistingConnectionFlags(["--help"]) == ["--help"])
    }

    @Test func errorsMapToTheDocumentedExitCodes() {
        let server = "resp://127.0.0.1:7401"
        #expect(CLIError.from(StockadeError(.notFound, "no reservation x"), server: server).exitCode == 1)
        #expect(CLIError.from(StockadeError(.unauthorized, "bad"), server: server).exitCode == 2)
        #expect(CLIError.from(StockadeError(.forbidden, "admin"), server: server).exitCode == 2)
        let refused = CLIError.from(
            TransportError(description: "cannot reach resp://127.0.0.1:1: connect(descriptor:addr:size:): Connection refused (errno: 111)"),
            server: server)
        #expect(refused.exitCode == 2)
        #expect(refused.line == "cannot reach \(server): connection refused")
        #expect(CLIError.usage("x").exitCode == 2 && CLIError.problemsReported.exitCode == 1 && CLIError.problemsReported.line == nil)
    }
}

@Suite struct WatchScreenTests {
    static func stats(atMs: Int64, granted: Int, held: Int64) -> NodeStats {
        let json = """
            {"nodeId":"n1","role":"leader","term":3,"leaderId":"n1","atMs":\(atMs),"appliedIndex":40,
             "reservations":{"granted":\(granted),"insufficient_stock":1},"holds":{"active":\(held),"stored":\(held)},
             "skuCount":1,"hotSKUs":0,
             "skus":[{"sku":"tee","hot":false,"total":100,"held":\(held),"sold":0,"allotted":0,"available":\(100 - held)}],
             "nextExpiries":[{"reservationId":"r-1","orderId":"o-1","expiresAt":\(atMs + 65_000),"units":2}],
             "cache":null,"local":null}
            """
        return try! JSONDecoder().decode(NodeStats.self, from: Data(json.utf8))
    }

    @Test func showsCountsRatesAndWhatExpiresNextWithinTheScreen() {
        let screen = WatchScreen(
            current: Self.stats(atMs: 2_000, granted: 30, held: 30), previous: Self.stats(atMs: 0, granted: 10, held: 10), cluster: nil)
        let lines = screen.lines(width: 60, height: 20, now: 2_000, terminal: .plain)
        let text = lines.joined(separator: "\n")
        #expect(text.contains("holds held: 30 "), "\(text)")
        #expect(text.contains("10/s granted"), "\(text)")
        #expect(text.contains("r-1  order o-1  2 units  in 1m05s"), "\(text)")
        #expect(lines.allSatisfy { Table.visibleWidth($0) <= 60 })
        #expect(lines.count <= 20)
        let tiny = screen.lines(width: 20, height: 5, now: 2_000, terminal: Terminal(colour: true, isTTY: true))
        #expect(tiny.count == 5 && tiny.allSatisfy { Table.visibleWidth($0) <= 20 })
    }
}

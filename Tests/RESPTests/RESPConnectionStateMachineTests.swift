import Ledger
import NIOCore
import RESP
import StockadeCore
import Testing

@testable import API

/// The connection's decisions, with no channel: what is served before AUTH, roles, the handshake,
/// Redis's wording, and replies leaving in request order whatever order they complete in.
@Suite struct RESPConnectionStateMachineTests {
    static func machine(limits: Limits = .default) -> RESPConnectionStateMachine {
        RESPConnectionStateMachine(
            identity: .init(id: 7, peer: "127.0.0.1:5000", local: "127.0.0.1:7401"), limits: limits, serverVersion: "7.2.0",
            authenticate: { ["admin-token": .admin, "checkout-token": .checkout][$0] })
    }

    static func args(_ words: String...) -> [ByteBuffer] { words.map { ByteBuffer(string: $0) } }

    /// Sends a command answered at once and returns its reply as RESP bytes.
    static func reply(_ machine: inout RESPConnectionStateMachine, _ words: String...) -> String {
        let action = machine.received(words.map { ByteBuffer(string: $0) })
        #expect(action == .none, "\(words) was not answered at once")
        var buffer = ByteBuffer()
        _ = machine.takeReplies(into: &buffer)
        return String(buffer: buffer)
    }

    @Test func onlyHousekeepingIsServedBeforeAuth() {
        var machine = Self.machine()
        for words in [["RESERVE", "r", "o", "east", "60", "0", "tee", "1"], ["SKU", "tee"], ["ECHO", "x"], ["SELECT", "0"],
                      ["CONFIG", "GET", "save"], ["STOCK.SET", "tee", "yiwu", "1"]] {
            #expect(machine.received(words.map { ByteBuffer(string: $0) }) == .none)
            var buffer = ByteBuffer()
            _ = machine.takeReplies(into: &buffer)
            #expect(String(buffer: buffer) == "-NOAUTH Authentication required.\r\n", "\(words)")
        }
        #expect(Self.reply(&machine, "PING") == "+PONG\r\n")
        #expect(Self.reply(&machine, "CLIENT", "SETNAME", "checkout-7") == "+OK\r\n")
        #expect(Self.reply(&machine, "CLIENT", "GETNAME") == "$10\r\ncheckout-7\r\n")
        #expect(Self.reply(&machine, "COMMAND", "COUNT") == ":\(RESPCommandTable.commands.count)\r\n")
        #expect(Self.reply(&machine, "AUTH", "wrong") == "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        #expect(Self.reply(&machine, "AUTH", "default", "checkout-token") == "+OK\r\n")
        #expect(machine.role == .checkout)
        #expect(Self.reply(&machine, "ECHO", "x") == "$1\r\nx\r\n")
        #expect(Self.reply(&machine, "STOCK.SET", "tee", "yiwu", "1") == "-FORBIDDEN STOCK.SET needs the admin role\r\n")
        #expect(Self.reply(&machine, "RESET") == "+RESET\r\n")
        #expect(machine.role == nil)
        #expect(Self.reply(&machine, "SKU", "tee") == "-NOAUTH Authentication required.\r\n")
    }

    @Test func helloSwitchesProtocolAuthenticatesAndNames() {
        var machine = Self.machine()
        let hello = Self.reply(&machine, "HELLO", "3", "AUTH", "default", "admin-token", "SETNAME", "pipeline")
        #expect(hello.hasPrefix("%7\r\n$6\r\nserver\r\n$8\r\nstockade\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n"))
        #expect(machine.version == .resp3 && machine.role == .admin && machine.name == "pipeline")
        #expect(Self.reply(&machine, "CLIENT", "GETNAME") == "$8\r\npipeline\r\n")
        #expect(Self.reply(&machine, "CONFIG", "GET", "nothing") == "%0\r\n")
        #expect(Self.reply(&machine, "CONFIG", "GET", "save") == "%1\r\n$4\r\nsave\r\n$0\r\n\r\n")
        #expect(Self.reply(&machine, "HELLO", "4") == "-NOPROTO unsupported protocol version\r\n")
        #expect(Self.reply(&machine, "HELLO", "2").hasPrefix("*14\r\n"))
        #expect(Self.reply(&machine, "CONFIG", "GET", "appendonly") == "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n")
        // A wrong token in HELLO changes nothing.
        #expect(Self.reply(&machine, "HELLO", "3", "AUTH", "u", "nope").hasPrefix("-WRONGPASS"))
        #expect(machine.version == .resp2 && machine.role == .admin)
    }

    @Test func unknownCommandsAndWrongArityUseRedisWording() {
        var machine = Self.machine()
        #expect(Self.reply(&machine, "GET", "key", "more") == "-ERR unknown command 'GET', with args beginning with: 'key' 'more' \r\n")
        #expect(Self.reply(&machine, "FLUSHALL") == "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n")
        #expect(Self.reply(&machine, "ECHO") == "-ERR wrong number of arguments for 'echo' command\r\n")
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        #expect(Self.reply(&machine, "RESERVE", "r", "o", "east", "60", "0", "tee") == "-ERR wrong number of arguments for 'reserve' command\r\n")
    }

    @Test func argumentsThatAreNotUTF8AreRefused() {
        var machine = Self.machine()
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        var bad = ByteBuffer(string: "r")
        bad.writeBytes([0xFF, 0xFE])
        #expect(machine.received([ByteBuffer(string: "CONFIRM"), bad]) == .none)
        var buffer = ByteBuffer()
        _ = machine.takeReplies(into: &buffer)
        #expect(String(buffer: buffer) == "-INVALID_REQUEST arguments must be UTF-8 text\r\n")
    }

    @Test func reserveArgumentsAreCheckedLikeTheHTTPBody() {
        var machine = Self.machine()
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        #expect(Self.reply(&machine, "RESERVE", "r", "o", "east", "60", "2", "tee", "1") == "-INVALID_REQUEST allowSplit must be 0 or 1\r\n")
        #expect(Self.reply(&machine, "RESERVE", "r", "o", "east", "sixty", "0", "tee", "1") == "-INVALID_REQUEST ttlSeconds must be an integer\r\n")
        #expect(Self.reply(&machine, "RESERVE", "r", "o", "east", "60", "0", "tee", "1", "cap") == "-INVALID_REQUEST wrong number of arguments for 'reserve' command\r\n")
        #expect(Self.reply(&machine, "RESERVE", "r", "o", "east", "60", "0", "tee", "1.5") == "-INVALID_REQUEST quantity must be an integer\r\n")
        let action = machine.received(Self.args("RESERVE", "r", "o", "east", "60", "1", "tee", "2", "cap", "1"))
        #expect(
            action
                == .execute(
                    slot: 5,
                    .reserve(
                        ReserveRequest(
                            reservationId: ReservationID("r"), orderId: "o", region: "east",
                            lines: [ReservationLine(sku: SKU("tee"), quantity: 2), ReservationLine(sku: SKU("cap"), quantity: 1)],
                            ttlMs: 60_000, allowSplit: true)),
                    token: "checkout-token"))
        // Lines naming one SKU are added together, as over HTTP; each is checked as sent.
        let merged = machine.received(Self.args("RESERVE", "m", "o", "east", "60", "1", "tee", "2", "cap", "1", "tee", "4"))
        guard case .execute(_, .reserve(let request), _) = merged else { Issue.record("\(merged)"); return }
        #expect(request.lines == [ReservationLine(sku: SKU("tee"), quantity: 6), ReservationLine(sku: SKU("cap"), quantity: 1)])
        var fresh = Self.machine()
        _ = Self.reply(&fresh, "AUTH", "checkout-token")
        #expect(Self.reply(&fresh, "RESERVE", "r", "o", "east", "60", "0", "tee", "1", "tee", "0") == "-INVALID_REQUEST quantity of tee must be between 1 and 100000\r\n")
    }

    static func reserve(_ id: String) -> [ByteBuffer] { args("RESERVE", id, "o", "east", "60", "0", "tee", "1") }

    @Test func repliesLeaveInRequestOrder() {
        var machine = Self.machine()
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        guard case .execute(let first, _, _) = machine.received(Self.reserve("a")),
            case .execute(let second, _, _) = machine.received(Self.reserve("b"))
        else { Issue.record("reserves did not run side by side"); return }
        #expect(machine.received(Self.args("PING")) == .none)
        var buffer = ByteBuffer()
        #expect(machine.complete(second, with: .simpleString("second")).isEmpty)
        #expect(machine.takeReplies(into: &buffer) == false)
        #expect(buffer.readableBytes == 0, "nothing leaves before the first reply")
        #expect(machine.pendingCount == 3)
        #expect(machine.complete(first, with: .simpleString("first")).isEmpty)
        #expect(machine.takeReplies(into: &buffer) == false)
        #expect(String(buffer: buffer) == "+first\r\n+second\r\n+PONG\r\n")
        #expect(machine.pendingCount == 0)
    }

    /// Reserves run side by side; any other command runs alone, after what came before it.
    @Test func effectsKeepRequestOrderExceptAmongReserves() {
        var machine = Self.machine()
        _ = Self.reply(&machine, "AUTH", "admin-token")
        guard case .execute(let set, _, _) = machine.received(Self.args("STOCK.SET", "tee", "yiwu", "5")) else {
            Issue.record("STOCK.SET did not run")
            return
        }
        #expect(machine.received(Self.reserve("a")) == .none, "a reserve waits for the STOCK.SET before it")
        #expect(machine.received(Self.reserve("b")) == .none)
        #expect(machine.received(Self.args("CONFIRM", "a")) == .none)
        #expect(machine.received(Self.reserve("c")) == .none, "nothing passes a waiting command")
        let reserves = machine.complete(set, with: .simpleString("OK"))
        #expect(reserves.map(\.slot) == [2, 3])
        #expect(machine.complete(2, with: .simpleString("a")).isEmpty, "the CONFIRM waits for both reserves")
        #expect(machine.complete(3, with: .simpleString("b")).map(\.slot) == [4])
        #expect(machine.complete(4, with: .simpleString("confirmed")).map(\.slot) == [5])
        _ = machine.complete(5, with: .simpleString("c"))
        var buffer = ByteBuffer()
        _ = machine.takeReplies(into: &buffer)
        #expect(String(buffer: buffer) == "+OK\r\n+a\r\n+b\r\n+confirmed\r\n+c\r\n")
    }

    @Test func aProtocolErrorIsAnsweredAfterEarlierRepliesThenCloses() {
        var machine = Self.machine()
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        guard case .execute(let slot, _, _) = machine.received(Self.args("CONFIRM", "a")) else {
            Issue.record("not executed")
            return
        }
        machine.protocolError(RESPProtocolError("invalid bulk length"))
        #expect(machine.received(Self.args("PING")) == .none)
        #expect(!machine.mayRead)
        var buffer = ByteBuffer()
        #expect(machine.takeReplies(into: &buffer) == false)
        _ = machine.complete(slot, with: .simpleString("done"))
        #expect(machine.takeReplies(into: &buffer) == true)
        #expect(String(buffer: buffer) == "+done\r\n-ERR Protocol error: invalid bulk length\r\n")
    }

    @Test func quitClosesAfterItsReply() {
        var machine = Self.machine()
        #expect(machine.received(Self.args("QUIT")) == .none)
        var buffer = ByteBuffer()
        #expect(machine.takeReplies(into: &buffer) == true)
        #expect(String(buffer: buffer) == "+OK\r\n")
    }

    @Test func readingStopsAtThePendingLimit() {
        var limits = Limits.default
        limits.respPendingRequestsMax = 2
        var machine = Self.machine(limits: limits)
        _ = Self.reply(&machine, "AUTH", "checkout-token")
        _ = machine.received(Self.args("CONFIRM", "a"))
        #expect(machine.mayRead)
        _ = machine.received(Self.args("CONFIRM", "b"))
        #expect(!machine.mayRead)
        _ = machine.complete(1, with: .simpleString("OK"))
        var buffer = ByteBuffer()
        _ = machine.takeReplies(into: &buffer)
        #expect(machine.mayRead)
    }

    @Test func commandIntrospectionListsStockadeCommandsWithKeys() {
        var machine = Self.machine()
        let info = Self.reply(&machine, "COMMAND", "INFO", "reserve", "nosuch")
        #expect(info.hasPrefix("*2\r\n*10\r\n$7\r\nreserve\r\n:-8\r\n"))
        #expect(info.contains(":6\r\n:-2\r\n:2\r\n"), "first key 6, last key -2, step 2")
        #expect(info.hasSuffix("$-1\r\n"))
        let docs = Self.reply(&machine, "COMMAND", "DOCS", "confirm")
        #expect(docs.hasPrefix("*2\r\n$7\r\nconfirm\r\n"))
    }
}

/// The operator's commands parse like their HTTP routes' parameters.
@Suite struct RESPAdminCommandTests {
    @Test func auditStatsAndHoldsByOrderParse() throws {
        #expect(try RESPRequest.parse("AUDIT", [], limits: .default) == .audit(sku: nil))
        #expect(try RESPRequest.parse("AUDIT", ["tee"], limits: .default) == .audit(sku: "tee"))
        #expect(throws: StockadeError.self) { try RESPRequest.parse("AUDIT", ["a", "b"], limits: .default) }
        #expect(throws: StockadeError.self) { try RESPRequest.parse("AUDIT", ["bad\u{1}sku"], limits: .default) }
        #expect(try RESPRequest.parse("STATS", [], limits: .default) == .stats)
        let holds = try RESPRequest.parse("HOLDS", ["*", "ORDER", "o-1", "STATUS", "held"], limits: .default)
        #expect(holds == .holds(["orderId": "o-1", "status": "held"], consistency: nil))
        #expect(holds.leaderReadPath == "/v1/holds?orderId=o-1&status=held")
        #expect(RESPCommandTable.byName["AUDIT"]?.role == .admin && RESPCommandTable.byName["STATS"]?.role == .admin)
    }
}

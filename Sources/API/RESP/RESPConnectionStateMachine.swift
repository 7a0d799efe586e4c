import DequeModule
import Ledger
import NIOCore
import RESP
import StockadeCore

/// One RESP connection's protocol state: the protocol version, who is authenticated, the
/// client's name, and the replies owed, in request order. Pure: commands and completions go in,
/// actions and encoded replies come out; `RESPServerHandler` carries them out.
///
/// Every command gets a slot when it arrives. Housekeeping is answered at once into its slot;
/// a Stockade command leaves its slot open until `complete(_:with:)`. Replies leave from the
/// front only, so they go out in request order however many are in flight.
///
/// Effects keep request order too, except among reserves: pipelined `RESERVE`s run side by side
/// (that is what fills a group commit), but any other Stockade command waits until everything
/// before it has been answered, and holds everything after it until it is. So a `RESERVE`
/// pipelined after a `STOCK.SET` sees the new stock, and a `CONFIRM` after its `RESERVE` finds it.
struct RESPConnectionStateMachine {
    /// What the handler must do after a command arrives.
    enum Action: Equatable {
        /// Nothing to run: a reply may be ready (see `takeReplies`).
        case none
        /// Run this request for the caller with this bearer token; complete slot `slot` with the answer.
        case execute(slot: UInt64, RESPRequest, token: String)
    }

    /// What the connection knows of itself, for `HELLO`, `CLIENT INFO` and `INFO`.
    struct Identity: Equatable {
        var id: Int64
        var peer: String
        var local: String
    }

    /// A reply waiting in its slot: a value, or a reservation written straight into the output
    /// (the reserve path's answer; see `RESPReply.write(_:version:into:)`).
    enum Reply: Sendable {
        case value(RESPValue)
        case reservation(Hold)

        func write(to buffer: inout ByteBuffer, version: RESPVersion) {
            switch self {
            case .value(let value): value.write(to: &buffer, version: version)
            case .reservation(let hold): RESPReply.write(hold, version: version, into: &buffer)
            }
        }
    }

    private struct Slot {
        var reply: Reply?
        var version: RESPVersion
        var closeAfter: Bool
        /// Runs alone: nothing else of this connection's runs beside it.
        var exclusive = false
    }

    /// A Stockade command to run.
    struct Dispatch: Equatable {
        var slot: UInt64
        var request: RESPRequest
        var token: String
    }

    let identity: Identity
    let limits: Limits
    let serverVersion: String
    /// The role a token speaks for, or nil for an unknown token.
    let authenticate: @Sendable (String) -> Role?

    private(set) var version = RESPVersion.resp2
    private(set) var role: Role?
    private(set) var token: String?
    private(set) var name: String?
    private(set) var libraryName: String?
    private(set) var libraryVersion: String?
    private var slots = Deque<Slot>()
    /// The number of the slot at the front of `slots`.
    private var firstSlot: UInt64 = 0
    /// QUIT or a protocol error: later input is ignored.
    private(set) var closing = false
    /// Commands running now, and whether one of them runs alone.
    private var running = 0
    private var exclusiveRunning = false
    /// Commands waiting for an exclusive one before them (or for everything before an exclusive one).
    private var waiting = Deque<Dispatch>()

    init(identity: Identity, limits: Limits, serverVersion: String, authenticate: @escaping @Sendable (String) -> Role?) {
        self.identity = identity
        self.limits = limits
        self.serverVersion = serverVersion
        self.authenticate = authenticate
    }

    /// Commands read and not yet answered.
    var pendingCount: Int { slots.count }

    /// Whether the handler may read more from the socket.
    var mayRead: Bool { !closing && slots.count < limits.respPendingRequestsMax }

    // MARK: - Input

    mutating func received(_ arguments: [ByteBuffer]) -> Action {
        guard !closing, let first = arguments.first else { return .none }
        let words = arguments.map { String(buffer: $0) }
        let command = words[0].uppercased()
        let rest = Array(words.dropFirst())
        guard let spec = RESPCommandTable.byName[command] else {
            return answer(.error(Self.unknownCommand(String(buffer: first), rest)))
        }
        guard spec.acceptsArgumentCount(words.count) else {
            return answer(.error("ERR wrong number of arguments for '\(command.lowercased())' command"))
        }
        if let required = spec.role {
            guard let role else { return answer(.error("NOAUTH Authentication required.")) }
            guard role.allows(required) else {
                return answer(
                    Self.error(StockadeError(.forbidden, "\(command) needs the \(required.rawValue) role")))
            }
        }
        switch command {
        case "HELLO": return hello(rest)
        case "AUTH":
            guard rest.count <= 2 else { return answer(.error("ERR syntax error")) }
            if let error = authenticate(token: rest[rest.count - 1]) { return answer(error) }
            return answer(.simpleString("OK"))
        case "PING":
            guard rest.count <= 1 else { return answer(.error("ERR wrong number of arguments for 'ping' command")) }
            return answer(rest.first.map { .bulk($0) } ?? .simpleString("PONG"))
        case "ECHO": return answer(.bulk(rest[0]))
        case "QUIT":
            closing = true
            return answer(.simpleString("OK"), closeAfter: true)
        case "RESET":
            version = .resp2
            role = nil
            token = nil
            name = nil
            return answer(.simpleString("RESET"))
        case "SELECT":
            return answer(rest[0] == "0" ? .simpleString("OK") : .error("ERR DB index is out of range"))
        case "CLIENT": return client(rest)
        case "CONFIG": return config(rest)
        case "COMMAND": return commandInfo(rest)
        default:
            // Identifiers are text: a byte sequence that is not UTF-8 is refused, not repaired.
            guard arguments.allSatisfy({ $0.readableBytesView.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) != nil } ?? true }) else {
                return answer(Self.error(StockadeError(.invalidRequest, "arguments must be UTF-8 text")))
            }
            do {
                let request = try RESPRequest.parse(command, rest, limits: limits)
                let exclusive: Bool
                if case .reserve = request { exclusive = false } else { exclusive = true }
                var slot = Slot(reply: nil, version: version, closeAfter: false)
                slot.exclusive = exclusive
                slots.append(slot)
                let dispatch = Dispatch(slot: firstSlot + UInt64(slots.count - 1), request: request, token: token ?? "")
                guard waiting.isEmpty, mayStart(exclusive: exclusive) else {
                    waiting.append(dispatch)
                    return .none
                }
                start(exclusive: exclusive)
                return .execute(slot: dispatch.slot, dispatch.request, token: dispatch.token)
            } catch {
                return answer(Self.error(error))
            }
        }
    }

    /// A frame broke the protocol: answer it after everything before it, then close.
    mutating func protocolError(_ error: RESPProtocolError) {
        guard !closing else { return }
        closing = true
        _ = answer(.error("ERR \(error.description)"), closeAfter: true)
    }

    /// The answer to the request in `slot`; returns the commands that may start now.
    mutating func complete(_ slot: UInt64, with reply: RESPValue) -> [Dispatch] {
        complete(slot, with: .value(reply))
    }

    mutating func complete(_ slot: UInt64, with reply: Reply) -> [Dispatch] {
        guard slot >= firstSlot, slot - firstSlot < UInt64(slots.count) else { return [] }  // reset by close
        let index = Int(slot - firstSlot)
        precondition(slots[index].reply == nil, "slot \(slot) answered twice")
        slots[index].reply = reply
        running -= 1
        if slots[index].exclusive { exclusiveRunning = false }
        var started: [Dispatch] = []
        while let next = waiting.first {
            let exclusive = slots[Int(next.slot - firstSlot)].exclusive
            guard mayStart(exclusive: exclusive) else { break }
            waiting.removeFirst()
            start(exclusive: exclusive)
            started.append(next)
        }
        return started
    }

    private func mayStart(exclusive: Bool) -> Bool {
        exclusive ? running == 0 : !exclusiveRunning
    }

    private mutating func start(exclusive: Bool) {
        running += 1
        if exclusive { exclusiveRunning = true }
    }

    /// Encodes every reply that may go out now, in order, into `buffer`. Returns true when the
    /// connection must close after writing them.
    mutating func takeReplies(into buffer: inout ByteBuffer) -> Bool {
        while let slot = slots.first, let reply = slot.reply {
            reply.write(to: &buffer, version: slot.version)
            slots.removeFirst()
            firstSlot += 1
            if slot.closeAfter {
                slots.removeAll()
                waiting.removeAll()
                return true
            }
        }
        return false
    }

    // MARK: - Housekeeping

    private mutating func open(reply: Reply? = nil, closeAfter: Bool = false) -> UInt64 {
        slots.append(Slot(reply: reply, version: version, closeAfter: closeAfter))
        return firstSlot + UInt64(slots.count - 1)
    }

    private mutating func answer(_ reply: RESPValue, closeAfter: Bool = false) -> Action {
        _ = open(reply: .value(reply), closeAfter: closeAfter)
        return .none
    }

    /// nil on success, else the error to answer.
    private mutating func authenticate(token candidate: String) -> RESPValue? {
        guard let granted = authenticate(candidate) else {
            return .error("WRONGPASS invalid username-password pair or user is disabled.")
        }
        role = granted
        token = candidate
        return nil
    }

    private mutating func hello(_ arguments: [String]) -> Action {
        var requested = version
        var index = 0
        if let first = arguments.first {
            guard let number = Int(first), let parsed = RESPVersion(rawValue: number) else {
                return answer(.error("NOPROTO unsupported protocol version"))
            }
            requested = parsed
            index = 1
        }
        var newName: String?
        while index < arguments.count {
            switch arguments[index].uppercased() {
            case "AUTH" where index + 2 < arguments.count:
                if let error = authenticate(token: arguments[index + 2]) { return answer(error) }
                index += 3
            case "SETNAME" where index + 1 < arguments.count:
                guard Self.isValidName(arguments[index + 1]) else { return answer(Self.badName) }
                newName = arguments[index + 1]
                index += 2
            default:
                return answer(.error("ERR Syntax error in HELLO option '\(arguments[index])'"))
            }
        }
        if let newName { name = newName }
        version = requested
        return answer(
            .map([
                RESPPair("server", .bulk("stockade")),
                RESPPair("version", .bulk(serverVersion)),
                RESPPair("proto", .integer(Int64(version.rawValue))),
                RESPPair("id", .integer(identity.id)),
                RESPPair("mode", .bulk("standalone")),
                RESPPair("role", .bulk("master")),
                RESPPair("modules", .array([])),
            ]))
    }

    private mutating func client(_ arguments: [String]) -> Action {
        let sub = arguments[0].uppercased()
        switch (sub, arguments.count) {
        case ("SETNAME", 2):
            guard Self.isValidName(arguments[1]) else { return answer(Self.badName) }
            name = arguments[1].isEmpty ? nil : arguments[1]
            return answer(.simpleString("OK"))
        case ("GETNAME", 1):
            return answer(name.map { .bulk($0) } ?? .null)
        case ("SETINFO", 3):
            switch arguments[1].uppercased() {
            case "LIB-NAME": libraryName = arguments[2]
            case "LIB-VER": libraryVersion = arguments[2]
            default: return answer(.error("ERR Unrecognized option '\(arguments[1])'"))
            }
            return answer(.simpleString("OK"))
        case ("ID", 1):
            return answer(.integer(identity.id))
        case ("INFO", 1):
            return answer(.verbatim(format: "txt", text: clientInfoLine + "\n"))
        default:
            return answer(.error("ERR unknown subcommand or wrong number of arguments for '\(arguments[0])'. Try CLIENT HELP."))
        }
    }

    /// `CLIENT INFO`'s line, in Redis's field=value layout.
    var clientInfoLine: String {
        "id=\(identity.id) addr=\(identity.peer) laddr=\(identity.local) name=\(name ?? "") db=0 resp=\(version.rawValue)"
            + " user=\(role?.rawValue ?? "") lib-name=\(libraryName ?? "") lib-ver=\(libraryVersion ?? "")"
    }

    private mutating func config(_ arguments: [String]) -> Action {
        guard arguments[0].uppercased() == "GET" else {
            return answer(.error("ERR unknown subcommand '\(arguments[0])'. Try CONFIG HELP."))
        }
        // What clients ask on connect. Stockade fsyncs every grant before answering, its own way.
        let known: [(String, String)] = [("save", ""), ("appendonly", "yes"), ("appendfsync", "always"), ("databases", "1")]
        var pairs: [RESPPair] = []
        for parameter in arguments.dropFirst() {
            let wanted = parameter.lowercased()
            for (key, value) in known where wanted == "*" || wanted == key {
                if !pairs.contains(where: { $0.key == .bulk(key) }) { pairs.append(RESPPair(key, .bulk(value))) }
            }
        }
        return answer(.map(pairs))
    }

    private mutating func commandInfo(_ arguments: [String]) -> Action {
        let specs = RESPCommandTable.commands
        guard let sub = arguments.first?.uppercased() else { return answer(.array(specs.map(RESPCommandTable.info))) }
        let named = arguments.dropFirst().map { $0.uppercased() }
        switch sub {
        case "COUNT": return answer(.integer(Int64(specs.count)))
        case "LIST": return answer(.array(specs.map { .bulk($0.name.lowercased()) }))
        case "INFO":
            if named.isEmpty { return answer(.array(specs.map(RESPCommandTable.info))) }
            return answer(.array(named.map { RESPCommandTable.byName[$0].map(RESPCommandTable.info) ?? .null }))
        case "DOCS":
            let chosen = named.isEmpty ? specs : named.compactMap { RESPCommandTable.byName[$0] }
            return answer(.map(chosen.map { RESPPair($0.name.lowercased(), RESPCommandTable.docs($0)) }))
        default:
            return answer(.error("ERR unknown subcommand '\(arguments[0])'. Try COMMAND HELP."))
        }
    }

    // MARK: - Wording

    /// Redis's wording, so that clients and people recognise it.
    static func unknownCommand(_ name: String, _ arguments: [String]) -> String {
        var listed = ""
        for argument in arguments where listed.utf8.count < 128 {
            listed += "'\(argument.prefix(128 - listed.count))' "
        }
        return "ERR unknown command '\(name.prefix(128))', with args beginning with: \(listed)"
    }

    /// A refusal: the API's error code in upper case, then the message.
    static func error(_ error: StockadeError) -> RESPValue {
        .error("\(error.code.rawValue.uppercased()) \(error.message)")
    }

    static let badName = RESPValue.error("ERR Client names cannot contain spaces, newlines or special characters.")

    static func isValidName(_ name: String) -> Bool {
        name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

import CLua
import HotStock

/// A Redis for the simulator: a deterministic in-memory keyspace with the commands the node's
/// scripts and its consumer send, and the node's own Lua scripts run in Lua 5.1, the version Redis
/// embeds, with `redis.call`, `redis.pcall`, `redis.error_reply` and `redis.status_reply` bound to
/// that keyspace. The gate, the credit, the fence, the stop and the acknowledge are therefore the
/// very source the node sends to a real redis-server (docs/decisions.md says why this and not a
/// second copy in Swift). `SimulatedRedisTests` holds it to a real redis-server reply for reply.
///
/// Time is the simulator's (`nowMs`): it numbers stream entries, ages pending ones and expires
/// keys. Everything is durable as soon as it is written (the node requires `appendfsync always`);
/// the simulator models a kill before the fsync by restoring `data` from before the call.
public final class SimulatedRedis {
    public struct StreamID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var ms: Int64
        public var seq: Int64
        public static func < (a: StreamID, b: StreamID) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
        public var description: String { "\(ms)-\(seq)" }

        /// `ms-seq`, or `ms` alone (its sequence then `missing`).
        init?(_ text: String, missing: Int64) {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count <= 2, let ms = Int64(parts[0]) else { return nil }
            self.ms = ms
            if parts.count == 2 {
                guard let seq = Int64(parts[1]) else { return nil }
                self.seq = seq
            } else {
                seq = missing
            }
        }

        init(ms: Int64, seq: Int64) {
            self.ms = ms
            self.seq = seq
        }
    }

    struct Pending {
        var consumer: String
        var deliveredAtMs: Int64
        var deliveries: Int
    }

    struct Group {
        var lastDelivered: StreamID
        var pending: [StreamID: Pending] = [:]
    }

    struct Stream {
        var entries: [(id: StreamID, fields: [[UInt8]])] = []
        var lastID = StreamID(ms: 0, seq: 0)
        var groups: [String: Group] = [:]
    }

    enum Value {
        case string([UInt8])
        case stream(Stream)
        case hash([String: [UInt8]])
    }

    /// Everything Redis holds. A value: the simulator copies it to undo a call lost before its fsync.
    public struct Keyspace {
        var values: [String: Value] = [:]
        var expiresAtMs: [String: Int64] = [:]
    }

    public var data = Keyspace()
    public var nowMs: Int64 = 0
    /// Script calls run, for reports.
    public private(set) var scriptCalls = 0
    private let lua: OpaquePointer
    /// Compiled scripts by source, as references in Lua's registry.
    private var compiled: [String: Int32] = [:]

    public init() {
        lua = luaL_newstate()
        // The libraries Redis opens for scripts (base, table, string, math), not io or os.
        stockade_lua_open_redis_libraries(lua)
        lua_createtable(lua, 0, 4)
        let context = Unmanaged.passUnretained(self).toOpaque()
        for (name, variant) in [("call", 0), ("pcall", 1), ("error_reply", 2), ("status_reply", 3)] {
            stockade_lua_set_host(lua, name, simulatedRedisHost, context, Int32(variant))
        }
        stockade_lua_setglobal(lua, "redis")
        // As Redis does: a script that reads a global nobody set, or sets one, fails.
        let protection = """
            setmetatable(_G, {
              __index = function(_, name) error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2) end,
              __newindex = function(_, name) error("Attempt to modify a readonly table", 2) end,
            })
            """
        let source = Array(protection.utf8)
        let loaded = source.withUnsafeBufferPointer {
            luaL_loadbuffer(lua, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count, "@protection")
        }
        precondition(loaded == 0 && lua_pcall(lua, 0, 0, 0) == 0, "the global protection did not load")
    }

    deinit { lua_close(lua) }

    // MARK: - Scripts

    /// `EVAL` of `script`: its reply, an error reply when the script raised one or returned one.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: RedisCommand) -> RedisValue {
        scriptCalls += 1
        let top = lua_gettop(lua)
        defer { lua_settop(lua, top) }
        if compiled[script.source] == nil {
            let source = Array(script.source.utf8)
            let status = source.withUnsafeBufferPointer {
                luaL_loadbuffer(lua, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count, "@user_script")
            }
            guard status == 0 else { return .error("ERR Error compiling script: \(string(at: -1))") }
            compiled[script.source] = luaL_ref(lua, stockade_lua_registry())
        }
        lua_rawgeti(lua, stockade_lua_registry(), compiled[script.source]!)
        pushArray(keys.map { Array($0.utf8) })
        stockade_lua_rawsetglobal(lua, "KEYS")
        pushArray(arguments.arguments)
        stockade_lua_rawsetglobal(lua, "ARGV")
        guard lua_pcall(lua, 0, 1, 0) == 0 else { return .error("ERR Error running script: \(string(at: -1))") }
        return reply(at: -1)
    }

    /// One `redis.call` (variant 0), `redis.pcall` (1), `redis.error_reply` (2) or `redis.status_reply` (3).
    fileprivate func host(_ variant: Int32) -> Int32 {
        let count = lua_gettop(lua)
        if variant >= 2 {
            let text = count >= 1 ? string(at: 1) : ""
            lua_createtable(lua, 0, 1)
            push(Array(text.utf8))
            lua_setfield(lua, -2, variant == 2 ? "err" : "ok")
            return 1
        }
        var arguments: [[UInt8]] = []
        for index in stride(from: Int32(1), through: count, by: 1) {
            let type = lua_type(lua, index)
            guard type == LUA_TSTRING || type == LUA_TNUMBER else {
                push(Array("Lua redis() command arguments must be strings or integers".utf8))
                return -1
            }
            arguments.append(bytes(at: index))
        }
        guard !arguments.isEmpty else {
            push(Array("Please specify at least one argument for redis.call()".utf8))
            return -1
        }
        let value = execute(arguments.map { String(decoding: $0, as: UTF8.self) }, raw: arguments)
        if case .error(let message) = value, variant == 0 {
            push(Array(message.utf8))
            return -1
        }
        push(value)
        return 1
    }

    // MARK: - Lua values

    private func bytes(at index: Int32) -> [UInt8] {
        var length = 0
        guard let pointer = lua_tolstring(lua, index, &length) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private func string(at index: Int32) -> String { String(decoding: bytes(at: index), as: UTF8.self) }

    private func push(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress {
                lua_pushlstring(lua, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), buffer.count)
            } else {
                lua_pushlstring(lua, "", 0)
            }
        }
    }

    private func pushArray(_ items: [[UInt8]]) {
        lua_createtable(lua, Int32(items.count), 0)
        for (index, item) in items.enumerated() {
            push(item)
            lua_rawseti(lua, -2, Int32(index + 1))
        }
    }

    /// A Redis reply as Lua sees it (Redis's conversion rules).
    private func push(_ value: RedisValue) {
        switch value {
        case .integer(let number): lua_pushnumber(lua, Double(number))
        case .bulk(let bytes?): push(bytes)
        case .bulk(nil), .array(nil): lua_pushboolean(lua, 0)
        case .array(let items?):
            lua_createtable(lua, Int32(items.count), 0)
            for (index, item) in items.enumerated() {
                push(item)
                lua_rawseti(lua, -2, Int32(index + 1))
            }
        case .status(let text), .error(let text):
            lua_createtable(lua, 0, 1)
            push(Array(text.utf8))
            if case .status = value { lua_setfield(lua, -2, "ok") } else { lua_setfield(lua, -2, "err") }
        }
    }

    /// A Lua value as the reply Redis makes of it.
    private func reply(at index: Int32) -> RedisValue {
        switch lua_type(lua, index) {
        case LUA_TSTRING: return .bulk(bytes(at: index))
        case LUA_TNUMBER:
            // Redis truncates; a number out of Int64's range (or NaN) has no integer reply.
            let number = lua_tonumber(lua, index)
            guard number.isFinite, number > -9.2e18, number < 9.2e18 else { return .error("ERR number out of range") }
            return .integer(Int64(number))
        case LUA_TBOOLEAN: return lua_toboolean(lua, index) != 0 ? .integer(1) : .bulk(nil)
        case LUA_TTABLE:
            let absolute = index < 0 ? lua_gettop(lua) + index + 1 : index
            lua_getfield(lua, absolute, "err")
            if lua_type(lua, -1) == LUA_TSTRING {
                defer { stockade_lua_pop(lua, 1) }
                return .error(string(at: -1))
            }
            stockade_lua_pop(lua, 1)
            lua_getfield(lua, absolute, "ok")
            if lua_type(lua, -1) == LUA_TSTRING {
                defer { stockade_lua_pop(lua, 1) }
                return .status(string(at: -1))
            }
            stockade_lua_pop(lua, 1)
            var items: [RedisValue] = []
            var position: Int32 = 1
            while true {
                lua_rawgeti(lua, absolute, position)
                if lua_type(lua, -1) == LUA_TNIL {
                    stockade_lua_pop(lua, 1)
                    break
                }
                items.append(reply(at: -1))
                stockade_lua_pop(lua, 1)
                position += 1
            }
            return .array(items)
        default:
            return .bulk(nil)
        }
    }

    // MARK: - Commands

    /// Runs one command (its arguments as text and as bytes), as Redis would.
    public func call(_ arguments: [String]) -> RedisValue {
        execute(arguments, raw: arguments.map { Array($0.utf8) })
    }

    func expire(_ key: String) {
        if let at = data.expiresAtMs[key], at <= nowMs {
            data.values[key] = nil
            data.expiresAtMs[key] = nil
        }
    }

    func value(_ key: String) -> Value? {
        expire(key)
        return data.values[key]
    }

    static let wrongType = RedisValue.error("WRONGTYPE Operation against a key holding the wrong kind of value")

    private func execute(_ arguments: [String], raw: [[UInt8]]) -> RedisValue {
        let name = arguments[0].uppercased()
        let count = arguments.count
        func integer(_ index: Int) -> Int64? { index < count ? Int64(arguments[index]) : nil }
        switch name {
        case "GET":
            guard count == 2 else { return arity(name) }
            switch value(arguments[1]) {
            case nil: return .bulk(nil)
            case .string(let bytes): return .bulk(bytes)
            default: return Self.wrongType
            }
        case "MGET":
            return .array(arguments.dropFirst().map { key in
                if case .string(let bytes) = value(key) { return .bulk(bytes) }
                return .bulk(nil)
            })
        case "SET":
            guard count == 3 || count == 5 else { return arity(name) }
            var expiry: Int64?
            if count == 5 {
                guard arguments[3].uppercased() == "PX", let ms = integer(4), ms > 0 else { return .error("ERR syntax error") }
                expiry = nowMs + ms
            }
            data.values[arguments[1]] = .string(raw[2])
            data.expiresAtMs[arguments[1]] = expiry
            return .status("OK")
        case "INCRBY", "DECRBY":
            guard count == 3, let delta = integer(2) else { return .error("ERR value is not an integer or out of range") }
            var current: Int64 = 0
            switch value(arguments[1]) {
            case nil: break
            case .string(let bytes):
                guard let number = Int64(String(decoding: bytes, as: UTF8.self)) else {
                    return .error("ERR value is not an integer or out of range")
                }
                current = number
            default: return Self.wrongType
            }
            let (next, overflow) = name == "INCRBY" ? current.addingReportingOverflow(delta) : current.subtractingReportingOverflow(delta)
            guard !overflow else { return .error("ERR increment or decrement would overflow") }
            data.values[arguments[1]] = .string(Array(String(next).utf8))
            return .integer(next)
        case "DEL", "EXISTS":
            var found: Int64 = 0
            for key in arguments.dropFirst() where value(key) != nil {
                found += 1
                if name == "DEL" {
                    data.values[key] = nil
                    data.expiresAtMs[key] = nil
                }
            }
            return .integer(found)
        case "PEXPIRE":
            guard count == 3, let ms = integer(2) else { return arity(name) }
            guard value(arguments[1]) != nil else { return .integer(0) }
            data.expiresAtMs[arguments[1]] = nowMs + ms
            return .integer(1)
        case "HSET":
            guard count >= 4 && count % 2 == 0 else { return arity(name) }
            var hash: [String: [UInt8]] = [:]
            switch value(arguments[1]) {
            case nil: break
            case .hash(let existing): hash = existing
            default: return Self.wrongType
            }
            var added: Int64 = 0
            for index in stride(from: 2, to: count, by: 2) {
                if hash.updateValue(raw[index + 1], forKey: arguments[index]) == nil { added += 1 }
            }
            data.values[arguments[1]] = .hash(hash)
            return .integer(added)
        default:
            return streamCommand(name, arguments, raw: raw)
        }
    }

    func arity(_ name: String) -> RedisValue { .error("ERR wrong number of arguments for '\(name.lowercased())' command") }
}

/// `redis.*` as Lua calls it: back to the `SimulatedRedis` whose state this is.
private let simulatedRedisHost: stockade_lua_host = { _, context, variant in
    Unmanaged<SimulatedRedis>.fromOpaque(context!).takeUnretainedValue().host(variant)
}

import HotStock

/// The stream commands of `SimulatedRedis`: the decrement queue, its consumer group and its claims.
extension SimulatedRedis {
    func stream(_ key: String) -> (Stream?, RedisValue?) {
        switch value(key) {
        case nil: return (nil, nil)
        case .stream(let stream): return (stream, nil)
        default: return (nil, Self.wrongType)
        }
    }

    static func entry(_ item: (id: StreamID, fields: [[UInt8]])) -> RedisValue {
        .array([.bulk(Array(item.id.description.utf8)), .array(item.fields.map { .bulk($0) })])
    }

    func streamCommand(_ name: String, _ arguments: [String], raw: [[UInt8]]) -> RedisValue {
        let count = arguments.count
        guard count >= 2 else { return arity(name) }
        let key = arguments[1]
        let (found, wrong) = stream(key)
        if let wrong { return wrong }
        switch name {
        case "XLEN":
            return .integer(Int64(found?.entries.count ?? 0))
        case "XADD":
            guard count >= 5, arguments[2] == "*", (count - 3) % 2 == 0 else { return .error("ERR syntax error") }
            var stream = found ?? Stream()
            let id = nowMs > stream.lastID.ms ? StreamID(ms: nowMs, seq: 0) : StreamID(ms: stream.lastID.ms, seq: stream.lastID.seq + 1)
            stream.entries.append((id, Array(raw[3...])))
            stream.lastID = id
            data.values[key] = .stream(stream)
            return .bulk(Array(id.description.utf8))
        case "XRANGE", "XREVRANGE":
            guard count == 4 || count == 6 else { return arity(name) }
            let reverse = name == "XREVRANGE"
            let (low, high) = reverse ? (arguments[3], arguments[2]) : (arguments[2], arguments[3])
            guard let start = low == "-" ? StreamID(ms: 0, seq: 0) : StreamID(low, missing: 0),
                let end = high == "+" ? StreamID(ms: .max, seq: .max) : StreamID(high, missing: .max)
            else { return .error("ERR Invalid stream ID specified as stream command argument") }
            var most = Int.max
            if count == 6 {
                guard arguments[4].uppercased() == "COUNT", let limit = Int(arguments[5]) else { return .error("ERR syntax error") }
                most = limit > 0 ? limit : Int.max  // Redis: a count of zero or less is no limit
            }
            var items = (found?.entries ?? []).filter { $0.id >= start && $0.id <= end }
            if reverse { items.reverse() }
            return .array(items.prefix(most).map(Self.entry))
        case "XDEL":
            guard var stream = found else { return .integer(0) }
            let ids = Set(arguments.dropFirst(2).compactMap { StreamID($0, missing: 0) })
            let before = stream.entries.count
            stream.entries.removeAll { ids.contains($0.id) }
            data.values[key] = .stream(stream)
            return .integer(Int64(before - stream.entries.count))
        case "XACK":
            guard count >= 4 else { return arity(name) }
            guard var stream = found, var group = stream.groups[arguments[2]] else { return .integer(0) }
            var acknowledged: Int64 = 0
            for text in arguments.dropFirst(3) {
                if let id = StreamID(text, missing: 0), group.pending.removeValue(forKey: id) != nil { acknowledged += 1 }
            }
            stream.groups[arguments[2]] = group
            data.values[key] = .stream(stream)
            return .integer(acknowledged)
        default:
            return groupCommand(name, arguments, found: found)
        }
    }

    /// `XGROUP CREATE`, `XREADGROUP` (one stream) and `XAUTOCLAIM`, as the node's consumer sends them.
    func groupCommand(_ name: String, _ arguments: [String], found: Stream?) -> RedisValue {
        let count = arguments.count
        switch name {
        case "XGROUP":
            // XGROUP CREATE key group id MKSTREAM
            guard count >= 5, arguments[1].uppercased() == "CREATE" else { return .error("ERR syntax error") }
            let key = arguments[2]
            let (existing, wrong) = stream(key)
            if let wrong { return wrong }
            guard var stream = existing ?? (count == 6 ? Stream() : nil) else {
                return .error("ERR The XGROUP subcommand requires the key to exist")
            }
            guard stream.groups[arguments[3]] == nil else { return .error("BUSYGROUP Consumer Group name already exists") }
            let start = arguments[4] == "$" ? stream.lastID : StreamID(arguments[4], missing: 0) ?? StreamID(ms: 0, seq: 0)
            stream.groups[arguments[3]] = Group(lastDelivered: start)
            data.values[key] = .stream(stream)
            return .status("OK")
        case "XREADGROUP":
            // XREADGROUP GROUP group consumer COUNT n STREAMS key id
            guard count == 9, arguments[1].uppercased() == "GROUP", arguments[4].uppercased() == "COUNT",
                let most = Int(arguments[5]), most > 0, arguments[6].uppercased() == "STREAMS"
            else { return .error("ERR syntax error") }
            let key = arguments[7]
            let (existing, wrong) = stream(key)
            if let wrong { return wrong }
            guard var stream = existing, var group = stream.groups[arguments[2]] else {
                return .error("NOGROUP No such key '\(key)' or consumer group '\(arguments[2])' in XREADGROUP with GROUP option")
            }
            let consumer = arguments[3]
            var items: [RedisValue] = []
            if arguments[8] == ">" {
                let fresh = stream.entries.filter { $0.id > group.lastDelivered }.prefix(most)
                for item in fresh {
                    group.pending[item.id] = Pending(consumer: consumer, deliveredAtMs: nowMs, deliveries: 1)
                    group.lastDelivered = item.id
                    items.append(Self.entry(item))
                }
                stream.groups[arguments[2]] = group
                data.values[key] = .stream(stream)
                // A null reply (hiredis reads RESP2's null array as nil, as the node's client does).
                return fresh.isEmpty ? .bulk(nil) : .array([.array([.bulk(Array(key.utf8)), .array(items)])])
            }
            // Own pending entries from the given ID; a deleted entry comes back without fields.
            let from = StreamID(arguments[8], missing: 0) ?? StreamID(ms: 0, seq: 0)
            let mine = group.pending.filter { $0.value.consumer == consumer && $0.key > from }.keys.sorted().prefix(most)
            for id in mine {
                if let item = stream.entries.first(where: { $0.id == id }) {
                    group.pending[id]!.deliveries += 1
                    group.pending[id]!.deliveredAtMs = nowMs
                    items.append(Self.entry(item))
                } else {
                    items.append(.array([.bulk(Array(id.description.utf8)), .array(nil)]))  // deleted: not delivered again
                }
            }
            stream.groups[arguments[2]] = group
            data.values[key] = .stream(stream)
            return .array([.array([.bulk(Array(key.utf8)), .array(items)])])
        case "XAUTOCLAIM":
            // XAUTOCLAIM key group consumer min-idle-time start COUNT n
            guard count == 8, let idle = Int64(arguments[4]), let most = Int(arguments[7]), most > 0 else { return .error("ERR syntax error") }
            let key = arguments[1]
            guard var stream = found, var group = stream.groups[arguments[2]] else {
                return .error("NOGROUP No such key '\(key)' or consumer group '\(arguments[2])'")
            }
            let start = StreamID(arguments[5], missing: 0) ?? StreamID(ms: 0, seq: 0)
            var claimed: [RedisValue] = []
            var deleted: [RedisValue] = []
            var cursor = "0-0"
            // Scans the pending list from `start`: at most `most` entries claimed (or found
            // deleted), at most ten times that looked at; the cursor is where the next call goes
            // on, or 0-0 when the scan reached the end.
            let candidates = group.pending.keys.sorted().filter { $0 >= start }
            var attempts = most * 10
            for id in candidates {
                if attempts == 0 || claimed.count + deleted.count == most {
                    cursor = id.description
                    break
                }
                attempts -= 1
                // A deleted entry leaves the pending list however long it has been idle.
                guard let item = stream.entries.first(where: { $0.id == id }) else {
                    group.pending[id] = nil
                    deleted.append(.bulk(Array(id.description.utf8)))
                    continue
                }
                guard nowMs - group.pending[id]!.deliveredAtMs >= idle else { continue }
                group.pending[id] = Pending(consumer: arguments[3], deliveredAtMs: nowMs, deliveries: group.pending[id]!.deliveries + 1)
                claimed.append(Self.entry(item))
            }
            stream.groups[arguments[2]] = group
            data.values[key] = .stream(stream)
            return .array([.bulk(Array(cursor.utf8)), .array(claimed), .array(deleted)])
        default:
            return .error("ERR unknown command '\(arguments[0])'")
        }
    }
}

import Ledger
import StockadeCore

/// Redis key names (docs/hot-path.md). Identifiers cannot hold control characters, so U+001F
/// separates a SKU from a warehouse without any escaping.
public enum HotKeys {
    static let separator = "\u{1F}"
    public static func hot(_ sku: SKU) -> String { "stockade:hot:" + sku.rawValue }
    public static func allot(_ sku: SKU, _ warehouse: WarehouseID) -> String {
        "stockade:allot:" + sku.rawValue + separator + warehouse.rawValue
    }
    public static func grant(_ sku: SKU, _ warehouse: WarehouseID) -> String {
        "stockade:grant:" + sku.rawValue + separator + warehouse.rawValue
    }
    /// The cache's answer to a reservation: a string, the canonical body, 0x1C, the answer.
    public static func answer(_ id: ReservationID) -> String { "stockade:ans:" + id.rawValue }
    public static let token = "stockade:token"
    public static let holds = "stockade:holds"
    public static let deadLetters = "stockade:holds:dead"
    public static let group = "stockade"
    /// The highest leader term any coordinator has written with (see `Scripts.fence`).
    public static let coordinatorTerm = "stockade:coordinator:term"
    /// Reservation counts of one wall-clock second, a field per SKU and node (see `RateBoard`).
    public static func rates(second: Int64) -> String { "stockade:rates:\(second)" }
}

/// The Lua scripts. Each touches only keys passed in KEYS (so ACL key patterns apply to them).
public enum Scripts {
    /// The reserve gate, for a batch of reservations decided one after another in order, each
    /// all-or-nothing: a reservation sees what the ones before it in the batch took, and a
    /// repeated id in the same batch is a replay (or a conflict) of the first.
    /// KEYS: token, holds stream, then per reservation its answer key followed, per line, by the
    /// line's hot flag and the allotment counters of its candidate warehouses in priority order.
    /// ARGV: answer retention ms, backlog max, reservation count, then per reservation: id, digest,
    /// orderId, region, ttlMs, split (0/1), createdAtMs, line count, then per line: sku, quantity,
    /// warehouse count, warehouses.
    /// Returns one reply per reservation: {'granted', stored}, {'replay', stored}, {'conflict'},
    /// {'backlog'}, {'not_hot', sku} or {'short', sku, available}. Each reservation checks every
    /// line before it writes anything.
    ///
    /// What a batch shares is read and written once: the hot flags and counters are read on first
    /// use and kept in a table, the counters are written back by one DECRBY each at the end, the
    /// token by one INCRBY, and the backlog is read once. What is each reservation's own is its
    /// own: one answer key (`SET … PX`: the canonical body, 0x1C, the answer) and one decrement
    /// record. A script runs alone, so nothing changes these keys between the reads and the writes.
    public static let gate = RedisScript(
        """
        local values, original, taken = {}, {}, {}
        local function read(key)
          local value = values[key]
          if value == nil then
            value = redis.call('GET', key) or false
            values[key] = value
          end
          return value
        end
        local function left(key) return tonumber(read(key) or '0') end

        local token = tonumber(redis.call('GET', KEYS[1]) or '0')
        local granted = 0
        local backlog = redis.call('XLEN', KEYS[2])
        local backlogMax = tonumber(ARGV[2])

        local function decide(answerKey, a, k)
          local answer = redis.call('GET', answerKey)
          if answer then
            local cut = string.find(answer, '\\28', 1, true)
            if string.sub(answer, 1, cut - 1) == ARGV[a + 1] then return {'replay', string.sub(answer, cut + 1)} end
            return {'conflict'}
          end
          if backlog + granted >= backlogMax then return {'backlog'} end
          local split = ARGV[a + 5] == '1'
          local lines = tonumber(ARGV[a + 7])
          local l = a + 8
          local plan = {}
          for i = 1, lines do
            local sku, quantity, count = ARGV[l], tonumber(ARGV[l + 1]), tonumber(ARGV[l + 2])
            if read(KEYS[k]) ~= '1' then return {'not_hot', sku} end
            if split then
              local remaining, total = quantity, 0
              for w = 1, count do
                local units = left(KEYS[k + w])
                if units > 0 then
                  total = total + units
                  if remaining > 0 then
                    local take = math.min(remaining, units)
                    plan[#plan + 1] = {KEYS[k + w], sku, ARGV[l + 2 + w], take}
                    remaining = remaining - take
                  end
                end
              end
              if remaining > 0 then return {'short', sku, tostring(total)} end
            else
              local best, chosen = 0, nil
              for w = 1, count do
                local units = left(KEYS[k + w])
                if units >= quantity then chosen = w break end
                if units > best then best = units end
              end
              if not chosen then return {'short', sku, tostring(best)} end
              plan[#plan + 1] = {KEYS[k + chosen], sku, ARGV[l + 2 + chosen], quantity}
            end
            k = k + 1 + count
            l = l + 3 + count
          end
          local parts = {}
          for _, p in ipairs(plan) do
            if original[p[1]] == nil then
              original[p[1]] = left(p[1])
              taken[#taken + 1] = p[1]
            end
            values[p[1]] = tostring(left(p[1]) - p[4])
            parts[#parts + 1] = p[2] .. '\\30' .. p[3] .. '\\30' .. p[4]
          end
          granted = granted + 1
          local stored = (token + granted) .. '\\31' .. ARGV[a + 6] .. '\\31' .. table.concat(parts, '\\29')
          redis.call('SET', answerKey, ARGV[a + 1] .. '\\28' .. stored, 'PX', ARGV[1])
          redis.call('XADD', KEYS[2], '*', 'h', ARGV[a] .. '\\31' .. ARGV[a + 2] .. '\\31' .. ARGV[a + 3] .. '\\31' .. ARGV[a + 4] .. '\\31' .. ARGV[a + 5] .. '\\31' .. stored)
          return {'granted', stored}
        end

        local results = {}
        local a, k = 4, 3
        for r = 1, tonumber(ARGV[3]) do
          results[r] = decide(KEYS[k], a, k + 1)
          -- Step past this reservation's arguments and keys, whatever it decided.
          local lines = tonumber(ARGV[a + 7])
          a = a + 8
          k = k + 1
          for i = 1, lines do
            local count = tonumber(ARGV[a + 2])
            a = a + 3 + count
            k = k + 1 + count
          end
        end
        for _, key in ipairs(taken) do redis.call('DECRBY', key, original[key] - tonumber(values[key])) end
        if granted > 0 then redis.call('INCRBY', KEYS[1], granted) end
        return results
        """)

    /// The coordinator's fence, the start of each script that only the leader's coordinator runs:
    /// KEYS[1] holds the highest leader term written with, ARGV[1] is the caller's. An older term
    /// is refused before anything changes (a deposed leader's coordinator that has not noticed
    /// yet); a newer one raises the fence.
    static let fence = """
        local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
        local term = tonumber(ARGV[1])
        if term < fence then
          return redis.error_reply('STALE_TERM coordinator term ' .. ARGV[1] .. ' is older than term ' .. fence)
        end
        if term > fence then redis.call('SET', KEYS[1], ARGV[1]) end

        """

    /// Credits one ledger grant to the cache exactly once. KEYS: fence, counter, grant marker,
    /// hot flag. ARGV: leader term, grant log index, quantity. Returns the counter after.
    public static let credit = RedisScript(
        fence + """
        local last = tonumber(redis.call('GET', KEYS[3]) or '0')
        if last < tonumber(ARGV[2]) then
          redis.call('INCRBY', KEYS[2], ARGV[3])
          redis.call('SET', KEYS[3], ARGV[2])
        end
        redis.call('SET', KEYS[4], '1')
        return tonumber(redis.call('GET', KEYS[2]) or '0')
        """)

    /// Reads what an audit compares, in one instant of Redis (read-only). KEYS: the decrement
    /// stream, the dead-letter stream, n allotment counters, then their n grant markers. ARGV: n,
    /// the most records to read per stream. Returns {counters, markers, queued records,
    /// dead records, 1 if a stream was longer than that}.
    public static let audit = RedisScript(
        """
        local n = tonumber(ARGV[1])
        local most = tonumber(ARGV[2])
        local counters, markers = {}, {}
        for i = 1, n do
          counters[i] = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
          markers[i] = tonumber(redis.call('GET', KEYS[2 + n + i]) or '0')
        end
        local truncated = 0
        if redis.call('XLEN', KEYS[1]) > most or redis.call('XLEN', KEYS[2]) > most then truncated = 1 end
        local queued, dead = {}, {}
        if truncated == 0 then
          queued = redis.call('XRANGE', KEYS[1], '-', '+')
          dead = redis.call('XRANGE', KEYS[2], '-', '+')
        end
        return {counters, markers, queued, dead, truncated}
        """)

    /// Publishes one node's counts of one second (KEYS: that second's hash; ARGV: expiry ms, then
    /// field and count pairs). HSET, so publishing the same counts again changes nothing.
    public static let publishRates = RedisScript(
        """
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
        """)

    /// Acknowledges and deletes decrement records in one step (KEYS: the stream; ARGV: the group,
    /// then entry IDs). Two commands could be cut apart by a crash of Redis, leaving an entry
    /// acknowledged but still in the stream, where nothing would ever deliver or delete it again
    /// and the queue would never read as drained. A script's writes reach the AOF as one
    /// transaction, which Redis replays whole or not at all.
    public static let acknowledge = RedisScript(
        """
        redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
        return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
        """)

    /// Stops the cache selling a SKU: clears its hot flag and zeroes its counters (KEYS: fence, hot
    /// flag, the decrement stream, then counters; ARGV: leader term). Returns the units the counters still held and the ID
    /// of the stream's newest entry ("" when it is empty): with the flag gone no later entry can be
    /// for this SKU, so once no entry up to that ID is left in the stream (entries are deleted
    /// only after the ledger has them) everything the cache sold of it is in the ledger.
    public static let stop = RedisScript(
        fence + """
        redis.call('DEL', KEYS[2])
        local left = 0
        for i = 4, #KEYS do
          left = left + tonumber(redis.call('GET', KEYS[i]) or '0')
          redis.call('SET', KEYS[i], '0')
        end
        local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
        local mark = ''
        if #newest > 0 then mark = newest[1][1] end
        return {left, mark}
        """)
}

import StockadeCore

/// Reads a reserve answer without `JSONDecoder`, which took about a seventh of the harness's CPU
/// (and the harness shares the machine with the nodes it measures). It understands the service's
/// plain shape: `path`, `allocations` (objects of `sku`, `warehouse`, `quantity`) and `error`
/// (`code`, `message`), and skips every other field. On anything else (escapes, a missing field
/// of an allocation, malformed input) it returns nil and the caller decodes with `JSONDecoder`.
enum ReplyScanner {
    static func reserveReply(_ bytes: UnsafeRawBufferPointer) -> ReserveReply? {
        var cursor = JSONCursor(bytes: bytes)
        var reply = ReserveReply()
        let read = cursor.object { key, json in
            switch key {
            case "path": JSONCursor.setOnce(&reply.path, json.string())
            case "allocations": JSONCursor.setOnce(&reply.allocations, allocations(&json))
            case "error": JSONCursor.setOnce(&reply.error, error(&json))
            default: json.skipValue()
            }
        }
        return read && cursor.atEnd ? reply : nil
    }

    static func allocations(_ cursor: inout JSONCursor) -> [GrantedAllocation]? {
        var result: [GrantedAllocation] = []
        let read = cursor.array { json in
            var sku: String?
            var warehouse: String?
            var quantity: Int64?
            let member = json.object { key, json in
                switch key {
                case "sku": JSONCursor.setOnce(&sku, json.string())
                case "warehouse": JSONCursor.setOnce(&warehouse, json.string())
                case "quantity": JSONCursor.setOnce(&quantity, json.integer())
                default: json.skipValue()
                }
            }
            guard member, let sku, let warehouse, let quantity, let fits = Int(exactly: quantity) else { return false }
            result.append(GrantedAllocation(sku: sku, warehouse: warehouse, quantity: fits))
            return true
        }
        return read ? result : nil
    }

    static func error(_ cursor: inout JSONCursor) -> ErrorReply? {
        var code: String?
        var message: String?
        let read = cursor.object { key, json in
            switch key {
            case "code": JSONCursor.setOnce(&code, json.string())
            case "message": JSONCursor.setOnce(&message, json.string())
            default: json.skipValue()
            }
        }
        guard read, let code else { return nil }
        return ErrorReply(code: code, message: message)
    }
}

/// Finds a key repeated in one JSON object (I-JSON, RFC 7493, forbids it): other tools in front of
/// the service may take the last value where a decoder takes the first, and the two would then
/// disagree about which reservation a request is. A bounded scan over the bytes; it judges only
/// keys, and leaves every other error to the decoder.
enum DuplicateKeys {
    /// The first repeated key and the path of the object it is in (`body`, `lines.0`), or nil.
    static func first(in bytes: UnsafeRawBufferPointer, depthMax: Int = 64) -> (key: String, path: String)? {
        var scanner = Scanner(bytes: bytes, depthMax: depthMax)
        return scanner.value(path: "body") ? nil : scanner.found
    }

    /// The first number that is not an integer within 64 bits (`1.5`, `1e20`), with its path. Every
    /// number in the API's request bodies is such an integer, so when decoding fails this names
    /// the culprit.
    static func firstUnfitNumber(in bytes: UnsafeRawBufferPointer, depthMax: Int = 64) -> (path: String, literal: String)? {
        var scanner = Scanner(bytes: bytes, depthMax: depthMax)
        _ = scanner.value(path: "body")
        return scanner.unfit
    }

    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let depthMax: Int
        var index = 0
        var depth = 0
        var found: (key: String, path: String)?
        var unfit: (path: String, literal: String)?

        init(bytes: UnsafeRawBufferPointer, depthMax: Int) {
            self.bytes = bytes
            self.depthMax = depthMax
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Scans one value; false stops the scan (a duplicate found, or input it does not judge).
        mutating func value(path: String) -> Bool {
            skipSpace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object(path: path)
            case UInt8(ascii: "["): return array(path: path)
            case UInt8(ascii: "\""): return string() != nil
            default:
                // A number, true, false or null: up to the next delimiter.
                let start = index
                while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                    index += 1
                }
                let literal = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                if unfit == nil, let first = literal.first, first == "-" || first.isNumber, Int64(literal) == nil {
                    unfit = (path, literal)
                }
                return true
            }
        }

        mutating func object(path: String) -> Bool {
            depth += 1
            defer { depth -= 1 }
            guard depth <= depthMax else { return false }
            index += 1
            var keys: Set<String> = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return true
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return false }
                guard keys.insert(key).inserted else {
                    found = (key, path)
                    return false
                }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                guard value(path: path == "body" ? key : path + "." + key) else { return false }
                skipSpace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return false }
                index += 1
                return true
            }
        }

        mutating func array(path: String) -> Bool {
            depth += 1
            defer { depth -= 1 }
            guard depth <= depthMax else { return false }
            index += 1
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return true
            }
            var position = 0
            while true {
                guard value(path: "\(path).\(position)") else { return false }
                position += 1
                skipSpace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "]") else { return false }
                index += 1
                return true
            }
        }

        /// A string's decoded text (escapes resolved, so `"a"` and `"\u0061"` are one key), read by
        /// the same JSON reader that turns answers into RESP.
        mutating func string() -> String? {
            var reader = JSONToRESP(bytes: bytes)
            reader.position = index
            let text = reader.string()
            index = reader.position
            return text
        }
    }
}

import Crypto

/// SHA-1 from swift-crypto, used only to name Lua scripts the way Redis does (`EVALSHA`). Not for
/// anything that needs collision resistance.
enum SHA1 {
    static func hex(_ message: [UInt8]) -> String {
        Insecure.SHA1.hash(data: message).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}

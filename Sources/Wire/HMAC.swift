import Crypto
import StockadeCore

/// HMAC-SHA-256 for the peer handshake, from swift-crypto: peers prove they hold the cluster
/// secret by MACing both sides' nonces; the secret itself never crosses the wire.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// Compares two MACs in time independent of where they differ.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool { ConstantTime.equal(a, b) }
}

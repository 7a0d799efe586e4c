import Consensus

/// The proofs of the peer handshake.
///
/// The connector sends `hello(id, nonceC)`; the acceptor answers `challenge(id, nonceA,
/// acceptorProof)`; the connector checks it and sends `proof(connectorProof)`. Each proof is an
/// HMAC-SHA-256 under the cluster secret over a role label, both node ids and both nonces, so a
/// proof cannot be replayed on another connection (fresh nonces), reflected to the other role
/// (labels) or reused between other nodes (ids).
public enum PeerHandshake {
    public static let nonceBytes = 32

    public static func acceptorProof(
        secret: [UInt8], connector: NodeID, acceptor: NodeID, connectorNonce: [UInt8], acceptorNonce: [UInt8]
    ) -> [UInt8] {
        HMACSHA256.mac(
            key: secret,
            message: transcript("stockade-peer-acceptor-v1", connector, acceptor, connectorNonce, acceptorNonce))
    }

    public static func connectorProof(
        secret: [UInt8], connector: NodeID, acceptor: NodeID, connectorNonce: [UInt8], acceptorNonce: [UInt8]
    ) -> [UInt8] {
        HMACSHA256.mac(
            key: secret,
            message: transcript("stockade-peer-connector-v1", connector, acceptor, connectorNonce, acceptorNonce))
    }

    static func transcript(_ label: String, _ connector: NodeID, _ acceptor: NodeID, _ nonceC: [UInt8], _ nonceA: [UInt8])
        -> [UInt8]
    {
        var bytes = Array(label.utf8)
        for id in [connector, acceptor] {
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: id >> UInt64(shift))) }
        }
        bytes.append(UInt8(nonceC.count))
        bytes += nonceC
        bytes.append(UInt8(nonceA.count))
        bytes += nonceA
        return bytes
    }

    /// A fresh nonce from the system's secure generator.
    public static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

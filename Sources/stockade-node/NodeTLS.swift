import Cluster
import NIOSSL
import StockadeTLS

/// The TLS a node runs with, made from its `tls` section at start-up: every file is read and every
/// key checked against its certificate here, so a bad one stops the node before it listens.
struct NodeTLS {
    /// The HTTP listener's configuration (Hummingbird makes its own context from it).
    var http: TLSConfiguration?
    var resp: NIOSSLContext?
    /// The peer listener's context (demanding a client certificate when so configured) and the dialler's.
    var peers: PeerTLS?
    /// For reads relayed to the leader's HTTP API, when HTTP uses TLS.
    var relay: NIOSSLContext?

    /// Plaintext everywhere.
    init() {}

    init(_ section: NodeConfiguration.TLSSection) throws {
        let certificate = section.certificateFile
        let key = section.keyFile
        do {
            let server = try StockadeTLS.serverContext(certificateFile: certificate, keyFile: key)
            // Every node presents its own certificate when it dials, so a peer listener that
            // demands one, or a TLS HTTP API, can check who relays to it.
            let client = try StockadeTLS.clientContext(caFile: section.caFile, certificateFile: certificate, keyFile: key)
            if section.http ?? true {
                http = try StockadeTLS.serverConfiguration(certificateFile: certificate, keyFile: key)
                relay = client
            }
            if section.resp ?? true { resp = server }
            if section.peers ?? true {
                let demand = section.requirePeerCertificates ?? (section.caFile != nil)
                if demand && section.caFile == nil {
                    throw ConfigurationError("tls.requirePeerCertificates needs tls.caFile, the authority peer certificates must chain to")
                }
                let listener =
                    demand ? try StockadeTLS.serverContext(certificateFile: certificate, keyFile: key, clientCAFile: section.caFile) : server
                peers = PeerTLS(server: listener, client: client)
            }
        } catch let error as StockadeTLS.ConfigurationError {
            throw ConfigurationError("tls: \(error.description)")
        }
    }

    /// Whether `host` is a loopback address (plaintext there draws no warning).
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

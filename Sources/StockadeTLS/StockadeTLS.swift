import NIOCore
import NIOSSL

/// TLS for the three ways into a node (HTTP, RESP, peers) and for the clients of each, from PEM
/// files. Everything is loaded and checked when the context is made, so a missing file or a key
/// that does not match its certificate stops a node at start-up, not at its first connection.
///
/// TLS 1.2 is the floor. Servers verify no client certificate unless given `clientCAFile` (the
/// peer listener, to refuse a node with a certificate from another authority). Clients verify the
/// server's chain against `caFile` (or the system's roots) and its name: a host name against the
/// certificate's DNS names, an IP address against its IP addresses.
public enum StockadeTLS {
    public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// A server's context: its certificate chain and key; with `clientCAFile`, a client must present
    /// a certificate that one of its authorities signed, or the handshake fails.
    public static func serverContext(certificateFile: String, keyFile: String, clientCAFile: String? = nil) throws -> NIOSSLContext {
        try context(
            serverConfiguration(certificateFile: certificateFile, keyFile: keyFile, clientCAFile: clientCAFile), certificateFile)
    }

    /// The configuration `serverContext` makes its context from, for servers that take one
    /// (Hummingbird's). Call `serverContext` once as well, to check that the key fits.
    public static func serverConfiguration(certificateFile: String, keyFile: String, clientCAFile: String? = nil) throws
        -> TLSConfiguration
    {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try chain(certificateFile), privateKey: .privateKey(try key(keyFile)))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAFile {
            configuration.trustRoots = .certificates(try certificates(clientCAFile, what: "client CA"))
            // A client certificate names a client, not the address it dials from: its chain is
            // checked, its name is not.
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }

    /// A client's context: servers are checked against `caFile`'s authorities (the system's when
    /// nil); with `certificateFile` and `keyFile`, the client presents a certificate of its own.
    public static func clientContext(caFile: String?, certificateFile: String? = nil, keyFile: String? = nil) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile { configuration.trustRoots = .certificates(try certificates(caFile, what: "CA")) }
        switch (certificateFile, keyFile) {
        case (let certificateFile?, let keyFile?):
            configuration.certificateChain = try chain(certificateFile)
            configuration.privateKey = .privateKey(try key(keyFile))
        case (nil, nil): break
        default: throw ConfigurationError(description: "a client certificate needs both its certificate file and its key file")
        }
        return try context(configuration, certificateFile ?? caFile ?? "the system's trust roots")
    }

    /// The handler that opens a client connection to `host`. A name is sent as SNI and checked
    /// against the certificate's DNS names; an IP address is checked against its IP addresses.
    public static func clientHandler(_ context: NIOSSLContext, host: String) throws -> NIOSSLClientHandler {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
    }

    static func chain(_ path: String) throws -> [NIOSSLCertificateSource] {
        try certificates(path, what: "certificate").map { .certificate($0) }
    }

    static func certificates(_ path: String, what: String) throws -> [NIOSSLCertificate] {
        let loaded: [NIOSSLCertificate]
        do {
            loaded = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw ConfigurationError(description: "cannot read the \(what) file \(path): \(error)")
        }
        guard !loaded.isEmpty else { throw ConfigurationError(description: "the \(what) file \(path) holds no PEM certificate") }
        return loaded
    }

    static func key(_ path: String) throws -> NIOSSLPrivateKey {
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            throw ConfigurationError(description: "cannot read the key file \(path): \(error)")
        }
    }

    static func context(_ configuration: TLSConfiguration, _ source: String) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // Most often a key that does not belong to the certificate.
            throw ConfigurationError(description: "TLS setup from \(source) failed: \(error)")
        }
    }
}

/// A storage failure: an I/O error, or data on disk that fails its checksum where it cannot be a torn tail.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Comparison of secrets (MACs, token digests) in time that does not depend on where they differ.
public enum ConstantTime {
    /// Concrete arrays, not a generic over collections: called on every request, and an
    /// unspecialized generic there cost a fifth of the reserve rate in runtime metadata lookups.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                for index in 0..<x.count { difference |= x[index] ^ y[index] }
            }
        }
        return difference == 0
    }
}

import Foundation
import Testing
import Wire

/// The handshake's MAC (swift-crypto underneath) against RFC 4231, and its comparison.
@Suite struct HMACTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func hmacRFC4231Vectors() {
        // Test case 1.
        #expect(
            Self.hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Self.bytes("Hi There")))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: a key shorter than the block.
        #expect(
            Self.hex(HMACSHA256.mac(key: Self.bytes("Jefe"), message: Self.bytes("what do ya want for nothing?")))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a key longer than the block is hashed first.
        #expect(
            Self.hex(
                HMACSHA256.mac(
                    key: [UInt8](repeating: 0xaa, count: 131),
                    message: Self.bytes("Test Using Larger Than Block-Size Key - Hash Key First")))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func macComparison() {
        let mac = HMACSHA256.mac(key: Self.bytes("k"), message: Self.bytes("m"))
        #expect(HMACSHA256.equal(mac, mac))
        var flipped = mac
        flipped[31] ^= 1
        #expect(!HMACSHA256.equal(mac, flipped))
        #expect(!HMACSHA256.equal(mac, Array(mac.prefix(31))))
    }
}

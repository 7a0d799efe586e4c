/// A sellable item's identifier.
public struct SKU: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (lhs: SKU, rhs: SKU) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A physical stock location's identifier.
public struct WarehouseID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (lhs: WarehouseID, rhs: WarehouseID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The client-chosen idempotency key of a reservation.
public struct ReservationID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (lhs: ReservationID, rhs: ReservationID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A number that only grows: the log index of the command that granted a hold.
public struct FencingToken: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
    public static func < (lhs: FencingToken, rhs: FencingToken) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A position in the command log. Index 0 means "nothing"; the first entry is 1.
public typealias LogIndex = UInt64

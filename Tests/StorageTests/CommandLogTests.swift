import Foundation
import StockadeCore
import Testing

@testable import Storage

@Suite struct CommandLogTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "stockade-log-\(UInt64.random(in: 0...UInt64.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func entry(_ index: LogIndex) -> LogEntry {
        LogEntry(index: index, term: 1, payload: Array("command \(index)".utf8))
    }

    static func recoverAll(_ directory: String, after: LogIndex = 0) throws -> (CommandLog, [LogEntry]) {
        let log = try CommandLog(directory: directory, payloadBytesMax: 1 << 16)
        var entries: [LogEntry] = []
        try log.recover(after: after) { entries.append($0) }
        return (log, entries)
    }

    /// A log with entries 1…5 in one segment and a second segment started at 6 (empty).
    static func twoSegments(_ directory: String) throws -> CommandLog {
        let (log, _) = try recoverAll(directory)
        for index in 1...5 { log.append(entry(LogIndex(index))) }
        try log.sync()
        try log.startSegment(firstIndex: 6)
        return log
    }

    @Test func syncedEntriesComeBackInOrder() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try Self.recoverAll(directory)
        for index in 1...100 { log.append(Self.entry(LogIndex(index))) }
        try log.sync()
        let (reopened, entries) = try Self.recoverAll(directory)
        #expect(entries == (1...100).map { Self.entry(LogIndex($0)) })
        #expect(reopened.lastIndex == 100)
    }

    @Test func tornTailIsCutOffAndAppendingContinues() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try Self.recoverAll(directory)
        for index in 1...10 { log.append(Self.entry(LogIndex(index))) }
        try log.sync()
        let segment = directory + "/" + CommandLog.segmentName(1)
        let goodSize = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int
        // A crash mid-write: half of record 11 reaches the disk.
        var torn: [UInt8] = []
        Self.entry(11).append(to: &torn)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data(torn.prefix(torn.count / 2)))
        try handle.close()

        let (reopened, entries) = try Self.recoverAll(directory)
        #expect(entries.count == 10)
        #expect(try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int == goodSize)
        reopened.append(Self.entry(11))
        try reopened.sync()
        #expect(try Self.recoverAll(directory).1.count == 11)
    }

    @Test func flippedBitInTheLastRecordIsTreatedAsTorn() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try Self.recoverAll(directory)
        for index in 1...5 { log.append(Self.entry(LogIndex(index))) }
        try log.sync()
        let path = directory + "/" + CommandLog.segmentName(1)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 1] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try Self.recoverAll(directory).1.map(\.index) == [1, 2, 3, 4])
    }

    @Test func corruptionBeforeTheLastSegmentRefusesToOpen() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try Self.twoSegments(directory)
        for index in 6...8 { log.append(Self.entry(LogIndex(index))) }
        try log.sync()
        let path = directory + "/" + CommandLog.segmentName(1)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[30] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: StorageError.self) { try Self.recoverAll(directory) }
    }

    @Test func compactionDropsSegmentsCoveredBySnapshot() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try Self.twoSegments(directory)
        for index in 6...7 { log.append(Self.entry(LogIndex(index))) }
        try log.sync()
        try log.compact(through: 5)
        #expect(try log.segments().map(\.firstIndex) == [6])
        #expect(try Self.recoverAll(directory, after: 5).1.map(\.index) == [6, 7])
    }

    @Test func snapshotsRoundTripAndBadOnesAreSkipped() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        #expect(try store.loadLatest() == nil)
        try store.save(index: 7, term: 2, bytes: [1, 2, 3])
        let loaded = try store.loadLatest()
        #expect(loaded?.index == 7)
        #expect(loaded?.bytes == [1, 2, 3])
        // A damaged newer snapshot is ignored in favour of an intact older one.
        try Data([0, 1, 2, 3]).write(to: URL(fileURLWithPath: directory + "/" + SnapshotStore.name(9)))
        #expect(try store.loadLatest()?.index == 7)
    }

    @Test func crcMatchesTheCastagnoliCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

@Suite struct CommandLogTruncationTests {
    @Test func truncatingASuffixIsDurableAndAppendingContinues() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try CommandLogTests.twoSegments(directory)
        for index in 6...10 { log.append(CommandLogTests.entry(LogIndex(index))) }
        try log.sync()

        // Inside the second segment.
        try log.truncate(after: 7, term: 1)
        #expect(log.lastIndex == 7)
        log.append(LogEntry(index: 8, term: 2, payload: [8, 8]))
        try log.sync()
        var (reopened, entries) = try CommandLogTests.recoverAll(directory)
        #expect(entries.map(\.index) == Array(1...8))
        #expect(entries.last == LogEntry(index: 8, term: 2, payload: [8, 8]))

        // Exactly at a segment boundary: the later segment goes, the earlier one continues.
        try reopened.truncate(after: 5, term: 1)
        reopened.append(LogEntry(index: 6, term: 3, payload: [6]))
        try reopened.sync()
        (reopened, entries) = try CommandLogTests.recoverAll(directory)
        #expect(entries.map(\.index) == Array(1...6))
        #expect(entries.last?.term == 3)

        // Into the first segment.
        try reopened.truncate(after: 2, term: 1)
        (_, entries) = try CommandLogTests.recoverAll(directory)
        #expect(entries.map(\.index) == [1, 2])
    }

    @Test func resetStartsAnEmptyLogAfterASnapshotPoint() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try CommandLogTests.twoSegments(directory)
        try log.reset(after: 40, term: 7)
        #expect(log.lastIndex == 40 && log.lastTerm == 7)
        log.append(LogEntry(index: 41, term: 7, payload: [41]))
        try log.sync()
        let (_, entries) = try CommandLogTests.recoverAll(directory, after: 40)
        #expect(entries == [LogEntry(index: 41, term: 7, payload: [41])])
    }

    @Test func hardStateRoundTripsAndCorruptionIsRefused() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try HardStateFile(directory: directory)
        #expect(try file.load() == HardStateFile.Value())
        try file.save(.init(term: 5, votedFor: 2, commit: 99), durable: true)
        try file.save(.init(term: 6, votedFor: 3, commit: 120), durable: false)
        #expect(try HardStateFile(directory: directory).load() == .init(term: 6, votedFor: 3, commit: 120))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
        bytes[12] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: file.path))
        #expect(throws: StorageError.self) { try file.load() }
    }
}

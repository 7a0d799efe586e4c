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

    static func recoverAll(_ directory: String, after: LogIndex = 0, segmentBytes: Int = 0) throws -> (CommandLog, [LogEntry]) {
        let log = try CommandLog(directory: directory, payloadBytesMax: 1 << 16, segmentBytes: segmentBytes)
        var entries: [LogEntry] = []
        try log.recover(after: after) { entries.append($0) }
        return (log, entries)
    }

    /// A log with entries 1…5 in one segment and a second segment started at 6 (empty).
    static func twoSegments(_ directory: String, segmentBytes: Int = 0) throws -> CommandLog {
        let (log, _) = try recoverAll(directory, segmentBytes: segmentBytes)
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

    @Test func streamedSnapshotsRoundTripAndFirstLayoutFilesStillLoad() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        // A file in the first layout (checksum over the header, then the bytes), as older nodes wrote.
        var header = ByteWriter()
        header.write(UInt64(5))
        header.write(UInt64(1))
        header.write(UInt64(3))
        var legacy = ByteWriter()
        legacy.write(UInt32(0x534B_5453))
        legacy.write(CRC32C.checksum(header.bytes + [9, 8, 7]))
        legacy.write(raw: header.bytes + [9, 8, 7])
        try Data(legacy.bytes).write(to: URL(fileURLWithPath: directory + "/" + SnapshotStore.name(5)))
        #expect(try store.loadLatest()?.bytes == [9, 8, 7])

        // Streamed, syncing every 4 bytes, in uneven chunks (one empty).
        let length = try store.save(index: 11, term: 3, syncBytes: 4) { write in
            for chunk: [UInt8] in [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10]] { try write(chunk) }
        }
        #expect(length == 10)
        let loaded = try #require(try store.loadLatest())
        #expect(loaded.index == 11)
        #expect(loaded.term == 3)
        #expect(loaded.bytes == Array(1...10))
        #expect(try Directory.list(directory) == [SnapshotStore.name(11)])

        // A flipped byte in a streamed snapshot's bytes, or in its header, fails the checksum.
        let path = directory + "/" + SnapshotStore.name(11)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        for offset in [SnapshotStore.prefixBytes + 4, 9] {
            var bad = good
            bad[offset] ^= 0x40
            try bad.write(to: URL(fileURLWithPath: path))
            #expect(try store.loadLatest() == nil)
        }
    }

    @Test func crcMatchesTheCastagnoliCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

@Suite struct PreallocatedLogTests {
    static let segmentBytes = 4096

    static func fileSize(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    }

    /// Appends `range` in batches of ten, letting each spare finish so rolls happen where they must.
    static func write(_ log: CommandLog, _ range: ClosedRange<Int>) throws {
        for batch in stride(from: range.lowerBound, through: range.upperBound, by: 10) {
            for index in batch...min(batch + 9, range.upperBound) { log.append(CommandLogTests.entry(LogIndex(index))) }
            try log.sync()
            log.waitForSpare()
        }
    }

    @Test func segmentsArePreallocatedRollWhenFullAndRecoverInOrder() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        try Self.write(log, 1...500)
        let segments = try log.segments()
        #expect(segments.count > 3)
        // The first segment is a plain file (nothing was ready at start); every later one was
        // made full size in advance, and rolled to once full.
        for (firstIndex, name) in segments.dropFirst() {
            #expect(try Self.fileSize(directory + "/" + name) >= Self.segmentBytes, "segment \(firstIndex)")
        }
        let (reopened, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        #expect(entries == (1...500).map { CommandLogTests.entry(LogIndex($0)) })
        try Self.write(reopened, 501...520)
        #expect(try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes).1.map(\.index) == Array(1...520))
        // Compaction still deletes whole segments.
        let covered = try reopened.segments()[2].firstIndex - 1
        try reopened.compact(through: covered)
        #expect(try CommandLogTests.recoverAll(directory, after: covered, segmentBytes: Self.segmentBytes).1.first?.index == covered + 1)
    }

    @Test func aTornRecordInPreallocatedSpaceIsCutAndAppendingContinues() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        try Self.write(log, 1...60)
        let (firstIndex, name) = try log.segments().last!
        let path = directory + "/" + name
        #expect(try Self.fileSize(path) >= Self.segmentBytes)
        var goodEnd = 0
        for index in firstIndex...60 {
            var record: [UInt8] = []
            CommandLogTests.entry(LogIndex(index)).append(to: &record)
            goodEnd += record.count
        }
        // A crash mid-write: half of record 61 lands in the zero-filled space.
        var torn: [UInt8] = []
        CommandLogTests.entry(61).append(to: &torn)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(goodEnd))
        handle.write(Data(torn.prefix(torn.count / 2)))
        try handle.close()

        let (reopened, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        #expect(entries.map(\.index) == Array(1...60))
        #expect(try Self.fileSize(path) == goodEnd)
        try Self.write(reopened, 61...90)
        #expect(try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes).1.map(\.index) == Array(1...90))
        // Cut segments are not preallocated any more; the log moved on to a fresh one.
        #expect(try reopened.segments().last!.firstIndex > firstIndex)
    }

    @Test func aZeroTailIsFreeSpaceButGarbageBeforeTheLastSegmentIsCorruption() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (log, _) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        try Self.write(log, 1...50)
        // A snapshot starts a segment before the current one is full: its tail stays zero.
        let (_, name) = try log.segments().last!
        try log.startSegment(firstIndex: 51)
        try Self.write(log, 51...60)
        let earlier = directory + "/" + name
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: earlier)))
        #expect(bytes.count == Self.segmentBytes && bytes.last == 0)
        #expect(try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes).1.map(\.index) == Array(1...60))
        bytes[bytes.count - 1] = 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: earlier))
        #expect(throws: StorageError.self) { try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes) }
    }

    @Test func aLeftoverSpareIsReplaced() throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(repeating: 0x77, count: 100).write(to: URL(fileURLWithPath: directory + "/" + SpareSegment.name))
        let (log, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes)
        #expect(entries.isEmpty)
        log.waitForSpare()
        let spare = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + SpareSegment.name)))
        #expect(spare.count == Self.segmentBytes && spare.allSatisfy { $0 == 0 })
        try Self.write(log, 1...30)
        #expect(try CommandLogTests.recoverAll(directory, segmentBytes: Self.segmentBytes).1.map(\.index) == Array(1...30))
    }
}

@Suite struct CommandLogTruncationTests {
    @Test(arguments: [0, PreallocatedLogTests.segmentBytes])
    func truncatingASuffixIsDurableAndAppendingContinues(segmentBytes: Int) throws {
        let directory = CommandLogTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try CommandLogTests.twoSegments(directory, segmentBytes: segmentBytes)
        for index in 6...10 { log.append(CommandLogTests.entry(LogIndex(index))) }
        try log.sync()

        // Inside the second segment.
        try log.truncate(after: 7, term: 1)
        #expect(log.lastIndex == 7)
        log.append(LogEntry(index: 8, term: 2, payload: [8, 8]))
        try log.sync()
        var (reopened, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: segmentBytes)
        #expect(entries.map(\.index) == Array(1...8))
        #expect(entries.last == LogEntry(index: 8, term: 2, payload: [8, 8]))

        // Exactly at a segment boundary: the later segment goes, the earlier one continues.
        try reopened.truncate(after: 5, term: 1)
        reopened.append(LogEntry(index: 6, term: 3, payload: [6]))
        try reopened.sync()
        (reopened, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: segmentBytes)
        #expect(entries.map(\.index) == Array(1...6))
        #expect(entries.last?.term == 3)

        // Into the first segment.
        try reopened.truncate(after: 2, term: 1)
        (_, entries) = try CommandLogTests.recoverAll(directory, segmentBytes: segmentBytes)
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

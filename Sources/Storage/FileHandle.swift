import Glibc

/// A thin, blocking POSIX file wrapper. Every call either succeeds fully or throws `StorageError`.
final class PosixFile {
    let descriptor: Int32
    let path: String

    init(path: String, flags: Int32, mode: mode_t = 0o644) throws {
        let descriptor = open(path, flags | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw StorageError("open \(path): \(PosixFile.lastError())") }
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    static func lastError() -> String { String(cString: strerror(errno)) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError("write \(path): \(PosixFile.lastError())")
            }
            offset += written
        }
    }

    /// Makes written data durable. The caller acknowledges nothing before this returns.
    func syncData() throws {
        while fdatasync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw StorageError("fdatasync \(path): \(PosixFile.lastError())")
        }
    }

    func truncate(to size: Int) throws {
        guard ftruncate(descriptor, off_t(size)) == 0 else {
            throw StorageError("ftruncate \(path): \(PosixFile.lastError())")
        }
    }

    func seek(to offset: Int) throws {
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else { throw StorageError("lseek \(path): \(PosixFile.lastError())") }
    }

    func seekToEnd() throws {
        guard lseek(descriptor, 0, SEEK_END) >= 0 else { throw StorageError("lseek \(path): \(PosixFile.lastError())") }
    }

    func readAll() throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StorageError("read \(path): \(PosixFile.lastError())")
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }
}

/// Directory operations used by the log and the snapshot store.
enum Directory {
    static func create(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StorageError("mkdir \(path): \(PosixFile.lastError())")
        }
    }

    /// File names in `path` (not recursive), unsorted.
    static func list(_ path: String) throws -> [String] {
        guard let handle = opendir(path) else { throw StorageError("opendir \(path): \(PosixFile.lastError())") }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes creations, renames and removals in `path` durable.
    static func sync(_ path: String) throws {
        let directory = try PosixFile(path: path, flags: O_RDONLY | O_DIRECTORY)
        guard fsync(directory.descriptor) == 0 else { throw StorageError("fsync \(path): \(PosixFile.lastError())") }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw StorageError("unlink \(path): \(PosixFile.lastError())") }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw StorageError("rename \(from): \(PosixFile.lastError())") }
    }
}

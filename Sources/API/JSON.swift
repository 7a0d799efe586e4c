import Foundation
import Hummingbird
import NIOCore
import StockadeCore

/// JSON encoding and decoding for the API.
enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func response(status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return response(status: status, buffer: ByteBuffer(bytes: data))
    }

    static func response(status: HTTPResponse.Status, buffer: ByteBuffer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
    }

    static func response(status: HTTPResponse.Status, _ reservation: ReservationPayload) -> Response {
        var writer = JSONWriter()
        reservation.write(into: &writer)
        return response(status: status, buffer: writer.buffer)
    }

    static func response(status: HTTPResponse.Status, _ page: HoldsPagePayload) -> Response {
        var writer = JSONWriter(capacity: 256 * max(1, page.holds.count))
        page.write(into: &writer)
        return response(status: status, buffer: writer.buffer)
    }

    /// Reads a bounded body and decodes it; malformed JSON and missing fields are `invalid_request`.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer = try await collect(request, limit: limit)
        return try decode(type, from: buffer)
    }

    /// A reserve body: the fast parser for the common shape, `JSONDecoder` for everything else.
    static func decodeReserve(from request: Request, limit: Int) async throws -> ReserveBody {
        let buffer = try await collect(request, limit: limit)
        if let body = buffer.withUnsafeReadableBytes({ ReserveBodyParser.parse($0) }) { return body }
        return try decode(ReserveBody.self, from: buffer)
    }

    static func collect(_ request: Request, limit: Int) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw StockadeError(.payloadTooLarge, "request body exceeds \(limit) bytes")
        } catch is NIOTooManyBytesError {
            throw StockadeError(.payloadTooLarge, "request body exceeds \(limit) bytes")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        if let duplicate = buffer.withUnsafeReadableBytes({ DuplicateKeys.first(in: $0) }) {
            throw StockadeError(
                .invalidRequest, "duplicate key \"\(duplicate.key)\" in \(duplicate.path): each key may appear once (I-JSON, RFC 7493)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            // Valid JSON whose number does not fit its field: say which, not "invalid JSON".
            if case .dataCorrupted = error, let unfit = buffer.withUnsafeReadableBytes({ DuplicateKeys.firstUnfitNumber(in: $0) }) {
                throw StockadeError(.invalidRequest, "\(unfit.path) must be a whole number within 64 bits, not \(unfit.literal)")
            }
            throw StockadeError(.invalidRequest, "malformed request body: \(describe(error))")
        } catch {
            throw StockadeError(.invalidRequest, "malformed request body")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let joined = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return joined.isEmpty ? "body" : joined
        }
        switch error {
        case .keyNotFound(let key, let context):
            let prefix = path(context)
            return "missing field \(prefix == "body" ? key.stringValue : prefix + "." + key.stringValue)"
        case .typeMismatch(_, let context): return "wrong type at \(path(context))"
        case .valueNotFound(_, let context): return "null at \(path(context))"
        case .dataCorrupted(let context): return "invalid JSON at \(path(context))"
        @unknown default: return "invalid JSON"
        }
    }
}

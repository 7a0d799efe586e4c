import Foundation
import Hummingbird
import NIOCore
import StockadeCore

/// Turns every error into `{"error":{"code","message"}}` with the status its code maps to.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = StockadeRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as StockadeError {
            return ErrorBody.response(error)
        } catch let error as HTTPError {
            // A path the API has, asked with a method it does not have: 405 and the methods it has.
            if error.status == .notFound || error.status == .methodNotAllowed {
                let allowed = StockadeAPI.methods(forPath: request.uri.path)
                if !allowed.isEmpty && !allowed.contains(request.method.rawValue) {
                    var response = ErrorBody.response(
                        StockadeError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(allowed.joined(separator: ", "))"))
                    response.headers[.allow] = allowed.joined(separator: ", ")
                    return response
                }
            }
            return ErrorBody.response(Self.translate(error))
        } catch is NIOTooManyBytesError {
            return ErrorBody.response(StockadeError(.payloadTooLarge, "request body is too large"))
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return ErrorBody.response(StockadeError(.internalError, "internal error"))
        }
    }

    static func translate(_ error: HTTPError) -> StockadeError {
        switch error.status {
        case .notFound: StockadeError(.notFound, "no such route")
        case .contentTooLarge: StockadeError(.payloadTooLarge, "request body is too large")
        case .methodNotAllowed: StockadeError(.invalidRequest, "method not allowed")
        case .unauthorized: APIError.unauthorized
        case .badRequest: StockadeError(.invalidRequest, error.body ?? "bad request")
        default: StockadeError(.internalError, "\(error.status.code)")
        }
    }
}

/// The JSON error body.
struct ErrorBody {
    struct Detail {
        var code: String
        var message: String
        var sku: String?
        var requested: Int64?
        var available: Int64?
    }
    var error: Detail

    static func response(_ error: StockadeError, sku: String? = nil, requested: Int64? = nil, available: Int64? = nil)
        -> Response
    {
        let (status, body) = rendered(error, sku: sku, requested: requested, available: available)
        return JSON.response(status: status, buffer: body)
    }

    /// The status and body for `error`, for callers that write the response themselves.
    static func rendered(_ error: StockadeError, sku: String? = nil, requested: Int64? = nil, available: Int64? = nil)
        -> (status: HTTPResponse.Status, body: ByteBuffer)
    {
        let body = ErrorBody(
            error: Detail(
                code: error.code.rawValue, message: error.message, sku: sku, requested: requested, available: available))
        var writer = JSONWriter(capacity: 256)
        body.write(into: &writer)
        return (.init(code: error.code.httpStatus), writer.buffer)
    }
}

import Foundation
import LifecycleDaemon
import LifecycleEngine
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The daemon's small read-only HTTP port: health, readiness, Prometheus metrics, the
/// user, segment, trigger (uplift), alert and instance views, and the console page that shows them.
/// It runs on its own event-loop thread and reads only what the processing loop posts to the
/// `StatusBoard` and the metrics `registry`.
public final class StatusServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel

    /// Binds `host:port` (port 0 picks a free one); throws if the address is unusable.
    /// Idle connections are closed after `idleTimeout`, and connections beyond
    /// `maxConnections` at once as they arrive: idle clients must not use up the process's
    /// file descriptors, which the checkpoints need.
    public init(
        host: String, port: Int, board: StatusBoard, registry: PrometheusCollectorRegistry,
        clock: @escaping @Sendable () -> Int64, idleTimeout: Duration = .seconds(30), maxConnections: Int = 256
    ) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = NIOLockedValueBox(0)
        do {
            channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    let admitted = open.withLockedValue { count in
                        guard count < maxConnections else { return false }
                        count += 1
                        return true
                    }
                    guard admitted else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(idleTimeout)))
                        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                        try pipeline.addHandler(StatusHandler(board: board, registry: registry, clock: clock))
                    }
                }
                .bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

extension StatusServer: Service {
    /// Serves until the group shuts down, then closes the port. Listed before the processing
    /// loop in a group, it stops after it: `/readyz` answers "stopping" while the loop drains.
    public func run() async {
        try? await gracefulShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers one request at a time per connection; GET only, no request bodies.
final class StatusHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Loops that have not stepped for this long are reported unhealthy.
    static let staleAfterMilliseconds: Int64 = 60_000
    static let maxPathBytes = 2048
    static let lookupTimeout = TimeAmount.seconds(2)

    private let board: StatusBoard
    private let registry: PrometheusCollectorRegistry
    private let clock: @Sendable () -> Int64
    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    init(board: StatusBoard, registry: PrometheusCollectorRegistry, clock: @escaping @Sendable () -> Int64) {
        self.board = board
        self.registry = registry
        self.clock = clock
    }

    /// A connection idle for the timeout is closed.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request NIO cannot parse was answered 400 with `Connection: close` by the error
    /// handler before this one: close, as that response says.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let request = head else { return }
            head = nil
            route(request, context: context)
        }
    }

    private func route(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard request.method == .GET || request.method == .HEAD else {
            return respond(context, request, .methodNotAllowed, text: "read-only: use GET\n")
        }
        guard bodyBytes == 0, request.uri.utf8.count <= Self.maxPathBytes else {
            return respond(context, request, .payloadTooLarge, text: "no request bodies; paths up to \(Self.maxPathBytes) bytes\n")
        }
        let path = String(request.uri.split(separator: "?", maxSplits: 1).first ?? "")
        let snapshot = board.current
        switch path {
        case "/":
            let page = ConsolePage.response()
            respond(context, request, .ok, body: context.channel.allocator.buffer(string: page.html),
                    contentType: "text/html; charset=utf-8", headers: page.headers)
        case "/healthz":
            let age = clock() - snapshot.heartbeat
            if snapshot.heartbeat > 0 && age <= Self.staleAfterMilliseconds {
                respond(context, request, .ok, text: "ok\n")
            } else {
                respond(context, request, .serviceUnavailable, text: "processing loop has not stepped for \(age / 1000) s\n")
            }
        case "/readyz":
            if snapshot.ready {
                respond(context, request, .ok, text: "ready: \(snapshot.assignedPartitions.joined(separator: ", "))\n")
            } else {
                respond(context, request, .serviceUnavailable, text: "not ready: \(snapshot.notReadyReason)\n")
            }
        case "/metrics":
            var exposition: [UInt8] = []
            registry.emit(into: &exposition)
            respond(context, request, .ok, body: context.channel.allocator.buffer(bytes: exposition),
                    contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/v1/segments":
            respondJSON(context, request, .ok, [
                "users": snapshot.usersTracked,
                "stages": Dictionary(uniqueKeysWithValues: snapshot.usersPerStage.map { ($0.stage, $0.users) }),
                // The object's keys come out sorted: this is the rules' order, for a funnel.
                "order": snapshot.usersPerStage.map(\.stage),
            ])
        case "/v1/status":
            respondJSON(context, request, .ok, StatusJSON.object(snapshot, now: clock()))
        case "/v1/triggers":
            respondJSON(context, request, .ok, TriggersJSON.object(snapshot.triggers))
        case "/v1/alerts":
            respondJSON(context, request, .ok, AlertsJSON.object(snapshot.alerts))
        case _ where path.hasPrefix("/v1/users/"):
            let encoded = String(path.dropFirst("/v1/users/".count))
            guard let userID = encoded.removingPercentEncoding, !userID.isEmpty else {
                return respond(context, request, .badRequest, text: "expected /v1/users/{id}\n")
            }
            let loop = context.eventLoop
            let boundContext = NIOLoopBound(context, eventLoop: loop)
            // Answered once: by the processing loop, or with 503 if it does not answer in time
            // (it may be stopping or blocked), so a connection never hangs.
            let answered = NIOLoopBoundBox(false, eventLoop: loop)
            loop.scheduleTask(in: Self.lookupTimeout) {
                guard !answered.value else { return }
                answered.value = true
                self.respondJSON(boundContext.value, request, .serviceUnavailable, ["error": "the processing loop did not answer in time"])
            }
            board.lookUp(userID: userID) { report in
                loop.execute {
                    guard !answered.value else { return }
                    answered.value = true
                    let context = boundContext.value
                    if let report {
                        self.respondJSON(context, request, .ok, UserJSON.object(report))
                    } else {
                        self.respondJSON(context, request, .notFound, ["error": "no state for user '\(userID)' on this instance"])
                    }
                }
            }
        default:
            respond(context, request, .notFound, text: "not found: try /, /healthz, /readyz, /metrics, /v1/segments, /v1/triggers, /v1/alerts, /v1/status, /v1/users/{id}\n")
        }
    }

    private func respondJSON(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ object: Any) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        respond(context, request, status, text: String(decoding: data, as: UTF8.self) + "\n", contentType: "application/json")
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, text: String,
        contentType: String = "text/plain; charset=utf-8"
    ) {
        respond(context, request, status, body: context.channel.allocator.buffer(string: text), contentType: contentType)
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, body: ByteBuffer, contentType: String,
        headers extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders(extra)
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let keepAlive = request.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}

import Foundation
import Glibc
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LifecycleDaemon
import LifecycleEngine
import LifecycleHTTP
import Prometheus
import Testing

/// The HTTP port on its own, before any processing loop has posted anything.
@Suite("HTTP port")
struct StatusServerTests {
    static func request(_ port: Int, _ path: String, method: String = "GET") -> (status: Int, body: String, headers: [AnyHashable: Any]) {
        nonisolated(unsafe) var result = (status: 0, body: "", headers: [AnyHashable: Any]())
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        URLSession.shared.dataTask(with: request) { data, response, _ in
            let http = response as? HTTPURLResponse
            result = (http?.statusCode ?? 0, data.map { String(decoding: $0, as: UTF8.self) } ?? "", http?.allHeaderFields ?? [:])
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return result
    }

    @Test("not ready and not healthy before the loop runs; unanswered lookups time out with 503; read-only")
    func beforeTheLoop() throws {
        let registry = PrometheusCollectorRegistry()
        // What a pipeline registers as it starts; the registry keeps the handles.
        _ = DaemonMetrics(factory: DaemonMetrics.prometheusFactory(registry: registry), triggers: [TriggerArm("churn_risk", nil)], stages: [])
        let server = try StatusServer(host: "127.0.0.1", port: 0, board: StatusBoard(), registry: registry, clock: { 1_000_000 })
        defer { server.close() }
        let port = server.port
        #expect(port > 0)
        let ready = Self.request(port, "/readyz")
        #expect(ready.status == 503 && ready.body.contains("not ready"), "\(ready)")
        #expect(Self.request(port, "/healthz").status == 503)
        let metrics = Self.request(port, "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("lifecycled_ready 0"), "\(metrics)")
        let started = Date()
        let lookup = Self.request(port, "/v1/users/someone")
        #expect(lookup.status == 503, "\(lookup)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(Self.request(port, "/v1/users/x", method: "POST").status == 405)
        #expect(Self.request(port, "/nope").status == 404)
    }

    @Test("/v1/triggers: per trigger and arm fired, converted and rate; the uplift with its interval, or why there is none")
    func triggers() throws {
        let board = StatusBoard()
        func status(_ name: String, holdout: Bool = true, goal: Bool = true, _ treatment: ArmCount, _ control: ArmCount) -> StatusBoard.TriggerStatus {
            .init(name: name, reason: "\(name) reason", hasHoldout: holdout, controlShare: holdout ? 0.1 : 0, hasGoal: goal,
                  totals: ArmTotals(treatment: treatment, control: control))
        }
        board.publish { snapshot in
            snapshot.triggers = [
                // Newcombe (1998), Table II, example (a): 56/70 against 48/80.
                status("churn_risk", ArmCount(fired: 70, converted: 56), ArmCount(fired: 80, converted: 48)),
                status("upgrade_ready", ArmCount(fired: 300, converted: 20), ArmCount(fired: 12, converted: 1)),
                status("power_user", goal: false, ArmCount(fired: 90, converted: 0), ArmCount(fired: 40, converted: 0)),
                status("win_back", holdout: false, ArmCount(fired: 5, converted: 0), ArmCount()),
            ]
        }
        let server = try StatusServer(host: "127.0.0.1", port: 0, board: board, registry: PrometheusCollectorRegistry(), clock: { 1_000_000 })
        defer { server.close() }
        let response = Self.request(server.port, "/v1/triggers")
        #expect(response.status == 200)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any], "\(response)")
        #expect(object["min_fired_per_arm"] as? Int == Uplift.minimumFiredPerArm)
        let list = try #require(object["triggers"] as? [[String: Any]])
        #expect(list.compactMap { $0["trigger"] as? String } == ["churn_risk", "upgrade_ready", "power_user", "win_back"])

        let churn = list[0]
        let treatment = try #require(churn["treatment"] as? [String: Any]), control = try #require(churn["control"] as? [String: Any])
        #expect(treatment["fired"] as? Int == 70 && treatment["converted"] as? Int == 56 && treatment["conversion_rate"] as? Double == 0.8)
        #expect(control["fired"] as? Int == 80 && control["conversion_rate"] as? Double == 0.6)
        #expect(churn["fired"] as? Int == 150 && churn["holdout"] as? Double == 0.1)
        let uplift = try #require(churn["uplift"] as? [String: Any])
        #expect(uplift["status"] as? String == "measured" && uplift["significant"] as? Bool == true)
        let interval = try #require(uplift["ci95"] as? [Double])
        #expect(interval.map { (($0 * 10_000).rounded()) / 10_000 } == [0.0524, 0.3339])
        #expect(abs((uplift["difference"] as? Double ?? 0) - 0.2) < 1e-12)
        #expect(abs((uplift["relative_lift"] as? Double ?? 0) - 0.2 / 0.6) < 1e-12)

        let short = try #require(list[1]["uplift"] as? [String: Any])
        #expect(short["status"] as? String == "not enough data" && (short["reason"] as? String)?.contains("control has 12") == true, "\(short)")
        #expect((list[2]["uplift"] as? [String: Any])?["status"] as? String == "no goal")
        #expect((list[3]["uplift"] as? [String: Any])?["status"] as? String == "no holdout")
        #expect(list[3]["treatment"] == nil && list[3]["holdout"] is NSNull && list[3]["fired"] as? Int == 5)
        #expect(list[0]["reason"] as? String == "churn_risk reason" && list[0]["has_goal"] as? Bool == true)
        #expect(list[2]["has_goal"] as? Bool == false)
    }

    @Test("/v1/status: readiness, partitions with worker, phase, offset, lag and restore progress, and the totals rates come from; /v1/segments keeps the rules' stage order")
    func status() throws {
        let board = StatusBoard()
        board.publish { snapshot in
            snapshot.notReadyReason = "restoring user-events[1] (40 of 100 records)"
            snapshot.usersTracked = 12
            snapshot.usersPerStage = [("new", 5), ("engaged", 4), ("at_risk", 3)]
            snapshot.counters.eventsConsumed = 500
            snapshot.counters.eventsRejected = ["not_json": 2, "bad_time": 1]
            snapshot.counters.triggersProduced = 7
            snapshot.partitions = [
                .init(name: "user-events[0]", worker: 0, phase: "live", nextOffset: 42, lag: 3),
                .init(name: "user-events[1]", worker: 1, phase: "restoring", nextOffset: -1, lag: nil,
                      restore: .init(records: 40, total: 100, users: 9)),
            ]
        }
        let server = try StatusServer(host: "127.0.0.1", port: 0, board: board, registry: PrometheusCollectorRegistry(), clock: { 1_000_000 })
        defer { server.close() }
        let response = Self.request(server.port, "/v1/status")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any], "\(response)")
        #expect(object["ready"] as? Bool == false && (object["not_ready_reason"] as? String)?.hasPrefix("restoring") == true)
        #expect(object["time"] as? Int == 1_000_000 && object["users"] as? Int == 12)
        #expect(object["events_consumed"] as? Int == 500 && object["events_rejected"] as? Int == 3 && object["triggers_produced"] as? Int == 7)
        let partitions = try #require(object["partitions"] as? [[String: Any]])
        #expect(partitions.count == 2)
        #expect(partitions[0]["partition"] as? String == "user-events[0]" && partitions[0]["lag"] as? Int == 3)
        #expect(partitions[0]["next_offset"] as? Int == 42 && partitions[0]["restore"] is NSNull)
        #expect(partitions[1]["phase"] as? String == "restoring" && partitions[1]["worker"] as? Int == 1 && partitions[1]["lag"] is NSNull)
        let restore = try #require(partitions[1]["restore"] as? [String: Int])
        #expect(restore == ["records": 40, "total": 100, "users": 9])
        let segments = Self.request(server.port, "/v1/segments")
        let stages = try #require(try JSONSerialization.jsonObject(with: Data(segments.body.utf8)) as? [String: Any], "\(segments)")
        #expect(stages["order"] as? [String] == ["new", "engaged", "at_risk"] && (stages["stages"] as? [String: Int])?["engaged"] == 4)
    }

    @Test("/: the console page, self-contained: HTML with a fresh nonce per response, a CSP that runs only what carries it, no external URL")
    func console() throws {
        let server = try Self.server()
        defer { server.close() }
        let first = Self.request(server.port, "/"), second = Self.request(server.port, "/?user=u42")
        #expect(first.status == 200 && second.status == 200)
        #expect(first.headers["Content-Type"] as? String == "text/html; charset=utf-8")
        #expect(first.headers["X-Content-Type-Options"] as? String == "nosniff")
        let policy = try #require(first.headers["Content-Security-Policy"] as? String)
        let directives = policy.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(directives.contains("default-src 'none'") && directives.contains("connect-src 'self'"), "\(policy)")
        let nonce = try #require(directives.first { $0.hasPrefix("script-src 'nonce-") }.map { $0.dropFirst("script-src 'nonce-".count).dropLast() })
        #expect(nonce.count >= 22 && directives.contains("style-src 'nonce-\(nonce)'"), "\(policy)")
        let page = first.body
        #expect(page.hasPrefix("<!doctype html>") && page.contains("<script nonce=\"\(nonce)\">") && page.contains("<style nonce=\"\(nonce)\">"))
        #expect(!page.contains("__CSP_NONCE__") && !second.body.contains(String(nonce)), "a nonce is used once")
        // Nothing loads from elsewhere: no absolute or protocol-relative URL, no CSS import.
        for external in ["http:", "https:", "@import", "url("] {
            #expect(!page.contains(external), "the page refers to \(external)")
        }
        #expect(page.range(of: "//[A-Za-z0-9]", options: .regularExpression) == nil, "a protocol-relative URL")
        #expect(!page.contains(".innerHTML") && !page.contains("insertAdjacentHTML"), "data would be parsed as markup")
        #expect(Self.request(server.port, "/", method: "HEAD").status == 200)
    }

    static func server(idleTimeout: Duration = .seconds(30), maxConnections: Int = 256) throws -> StatusServer {
        try StatusServer(
            host: "127.0.0.1", port: 0, board: StatusBoard(), registry: PrometheusCollectorRegistry(), clock: { 1_000_000 },
            idleTimeout: idleTimeout, maxConnections: maxConnections)
    }

    @Test("a request NIO cannot parse is answered 400 with Connection: close, and the connection is closed")
    func unparseable() throws {
        let server = try Self.server()
        defer { server.close() }
        let connection = try RawConnection(port: server.port)
        connection.send("NOT HTTP AT ALL\r\n\r\n")
        let received = try #require(connection.readUntilClosed(), "the connection stayed open")
        #expect(received.hasPrefix("HTTP/1.1 400") && received.lowercased().contains("connection: close"), "\(received)")
    }

    @Test("an idle connection is closed after the idle timeout")
    func idleTimeout() throws {
        let server = try Self.server(idleTimeout: .milliseconds(300))
        defer { server.close() }
        let connection = try RawConnection(port: server.port)
        let started = Date()
        #expect(connection.readUntilClosed() == "", "the idle connection stayed open")
        #expect(Date().timeIntervalSince(started) < 4)
    }

    @Test("connections beyond the limit are closed at once; a freed place is served again")
    func connectionLimit() throws {
        let server = try Self.server(maxConnections: 2)
        defer { server.close() }
        let request = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        var first: RawConnection? = try RawConnection(port: server.port)
        let second = try RawConnection(port: server.port)
        for connection in [first!, second] {
            connection.send(request)
            #expect(connection.receive()?.hasPrefix("HTTP/1.1 503") == true)  // served and kept open
        }
        let third = try RawConnection(port: server.port)
        third.send(request)
        #expect(third.readUntilClosed() == "", "a connection beyond the limit was served or kept open")
        first = nil  // closes it, freeing a place
        Thread.sleep(forTimeInterval: 0.2)
        let fourth = try RawConnection(port: server.port)
        fourth.send(request)
        #expect(fourth.receive()?.hasPrefix("HTTP/1.1 503") == true)
        _ = first
    }
}

/// A plain TCP client, to see what the server does with the connection itself.
final class RawConnection {
    let descriptor: Int32

    init(port: Int, timeoutSeconds: Int = 5) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = BinaryRunner.withLoopbackAddress(port: port) { connect(descriptor, $0, $1) }
        guard connected == 0 else {
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(descriptor, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
    }

    /// What one read returns, or nil on a timeout or when the server has closed.
    func receive() -> String? {
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = recv(descriptor, &bytes, bytes.count, 0)
        return count > 0 ? String(decoding: bytes[..<count], as: UTF8.self) : nil
    }

    /// Everything received until the server closes the connection, or nil if it is still open
    /// when the read times out.
    func readUntilClosed() -> String? {
        var received: [UInt8] = []
        var bytes = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(descriptor, &bytes, bytes.count, 0)
            if count == 0 { return String(decoding: received, as: UTF8.self) }
            if count < 0 { return errno == ECONNRESET ? String(decoding: received, as: UTF8.self) : nil }
            received += bytes[..<count]
        }
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import LifecycleDaemon
import LifecycleHTTP
import Prometheus
import Testing

/// The HTTP port on its own, before any processing loop has posted anything.
@Suite("HTTP port")
struct StatusServerTests {
    static func request(_ port: Int, _ path: String, method: String = "GET") -> (status: Int, body: String) {
        nonisolated(unsafe) var result = (status: 0, body: "")
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        URLSession.shared.dataTask(with: request) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data.map { String(decoding: $0, as: UTF8.self) } ?? "")
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return result
    }

    @Test("not ready and not healthy before the loop runs; unanswered lookups time out with 503; read-only")
    func beforeTheLoop() throws {
        let registry = PrometheusCollectorRegistry()
        // What a pipeline registers as it starts; the registry keeps the handles.
        _ = DaemonMetrics(factory: DaemonMetrics.prometheusFactory(registry: registry), triggers: ["churn_risk"], stages: [])
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
}

import LifecycleDaemon
import Prometheus

extension DaemonMetrics {
    /// A swift-metrics factory over `registry` (what `/metrics` shows) with the daemon's
    /// latency histogram buckets; other timers keep the factory's defaults.
    public static func prometheusFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[latencyLabel] = latencyBuckets
        return factory
    }
}

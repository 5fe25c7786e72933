import Foundation
import LifecycleDaemon

/// `/v1/status`: this instance at a glance, for the console — readiness, the assigned
/// partitions with their lag and restore progress, and running totals (with the time they
/// were read) from which a reader derives rates.
enum StatusJSON {
    static func object(_ snapshot: StatusBoard.Snapshot, now: Int64) -> [String: Any] {
        [
            "time": now,
            "ready": snapshot.ready,
            "not_ready_reason": snapshot.ready ? NSNull() : snapshot.notReadyReason,
            "users": snapshot.usersTracked,
            "events_consumed": snapshot.counters.eventsConsumed,
            "events_rejected": snapshot.counters.eventsRejected.values.reduce(0, +),
            "events_late": snapshot.counters.eventsLate,
            "triggers_produced": snapshot.counters.triggersProduced,
            "partitions": snapshot.partitions.map(partition),
        ]
    }

    private static func partition(_ status: StatusBoard.PartitionStatus) -> [String: Any] {
        [
            "partition": status.name,
            "worker": status.worker,
            "phase": status.phase,
            "next_offset": status.nextOffset,
            "lag": status.lag.map { $0 as Any } ?? NSNull(),
            "restore": status.restore.map { ["records": $0.records, "total": $0.total, "users": $0.users] as Any } ?? NSNull(),
        ]
    }
}

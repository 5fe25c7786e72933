import LifecycleEngine

/// `/v1/users/{id}`: everything the engine knows about a user, to answer "why did this user
/// get that trigger?".
enum UserJSON {
    static func object(_ report: UserReport) -> [String: Any] {
        var object: [String: Any] = [
            "user_id": report.userID,
            "stage": report.stage,
            "stage_since": report.stageSince,
            "in_stage_for_ms": max(0, report.streamTime - report.stageSince),
            "last_seen": report.lastSeen,
            "stream_time": report.streamTime,
            "counters": Dictionary(uniqueKeysWithValues: report.counters.map { ($0.name, $0.value) }),
            "attributes": Dictionary(uniqueKeysWithValues: report.attributes.map { ($0.name, $0.value) }),
            "last_fired": Dictionary(uniqueKeysWithValues: report.lastFired.map { ($0.trigger, $0.at) }),
        ]
        if let next = report.nextTimer { object["next_timer"] = next }
        return object
    }
}

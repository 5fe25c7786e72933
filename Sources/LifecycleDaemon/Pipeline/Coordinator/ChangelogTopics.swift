import Dispatch
import LifecycleConfig
import LifecycleKafka
import Logging

/// The changelog topics of a daemon's input topics (`<group_id>.<topic>.changelog` unless
/// named), checked before anything is consumed: each must have its input topic's partition
/// count (a partition's state lives in the changelog partition of the same number) and
/// `cleanup.policy=compact` (only the latest record per user is kept). A missing one is
/// created when `kafka.create_topics` allows it.
struct ChangelogTopics {
    /// Numbered: a task's `changelog` is an index here.
    let names: [String]
    private let indexByInput: [String: Int]

    static let none = ChangelogTopics(names: [], indexByInput: [:])

    /// The changelog of `inputTopic`, if state moves through one.
    func changelog(of inputTopic: String) -> (index: Int, topic: String)? {
        indexByInput[inputTopic].map { ($0, names[$0]) }
    }

    /// Checks (and creates) the changelog topics. Their cleanup policy is checked in the
    /// background, since some clusters answer configuration requests slowly or not at all;
    /// a wrong policy is reported to `inbox` as a failure.
    static func prepare(
        _ settings: DaemonSettings, clientProperties: [String: String], inbox: Mailbox<CoordinatorEvent>, logger: Logger
    ) throws -> ChangelogTopics {
        guard settings.state.changelog else { return .none }
        let kafka = settings.kafka
        let admin = try KafkaAdmin(properties: clientProperties, logger: logger)
        var names: [String] = []
        var indexByInput: [String: Int] = [:]
        for input in kafka.inputTopics {
            let changelog = kafka.changelogTopic(for: input)
            indexByInput[input] = names.count
            names.append(changelog)
            guard let partitions = try admin.partitionCount(of: input, timeoutMilliseconds: 10_000) else {
                logger.warning("input topic '\(input)' not found: its changelog '\(changelog)' is not checked")
                continue
            }
            switch try admin.partitionCount(of: changelog, timeoutMilliseconds: 10_000) {
            case nil where kafka.createTopics:
                do {
                    try admin.createTopic(changelog, partitions: partitions, configuration: ["cleanup.policy": "compact"], timeoutMilliseconds: 10_000)
                } catch {
                    throw KafkaError(
                        kind: error.kind,
                        message: "\(error.message). Create changelog topic '\(changelog)' with \(partitions) partitions and "
                            + "cleanup.policy=compact, or let the daemon's user create topics")
                }
                logger.notice("created changelog topic '\(changelog)' (\(partitions) partitions, cleanup.policy=compact)")
            case nil:
                throw KafkaError(
                    kind: .topicMismatch,
                    message: "changelog topic '\(changelog)' does not exist and kafka.create_topics is false: create it with "
                        + "\(partitions) partitions (as '\(input)') and cleanup.policy=compact")
            case let count? where count != partitions:
                throw KafkaError(
                    kind: .topicMismatch,
                    message: "changelog topic '\(changelog)' has \(count) partitions but its input topic '\(input)' has "
                        + "\(partitions): a partition's state lives in the changelog partition of the same number. Recreate "
                        + "it with \(partitions) partitions (its content is rebuilt), or name another in kafka.changelog_topics")
            default:
                break
            }
        }
        let checked = names
        DispatchQueue.global().async {
            checkCompaction(of: checked, clientProperties: clientProperties, inbox: inbox, logger: logger)
        }
        return ChangelogTopics(names: names, indexByInput: indexByInput)
    }

    private static func checkCompaction(
        of topics: [String], clientProperties: [String: String], inbox: Mailbox<CoordinatorEvent>, logger: Logger
    ) {
        do {
            let admin = try KafkaAdmin(properties: clientProperties, logger: logger)
            for topic in topics {
                let policy = try admin.configuration(of: topic, timeoutMilliseconds: 1_000)["cleanup.policy"] ?? ""
                guard policy.split(separator: ",").contains("compact") else {
                    inbox.post(.changelogUnusable(KafkaError(
                        kind: .topicMismatch,
                        message: "changelog topic '\(topic)' has cleanup.policy=\(policy.isEmpty ? "(none)" : policy): its records "
                            + "would be deleted by retention and state lost when a partition moves. Set cleanup.policy=compact "
                            + "(kafka-configs --alter --entity-type topics --entity-name \(topic) --add-config cleanup.policy=compact)")))
                    return
                }
            }
        } catch {
            logger.warning("could not check that the changelog topics are compacted (\(error)); make sure they have cleanup.policy=compact")
        }
    }
}

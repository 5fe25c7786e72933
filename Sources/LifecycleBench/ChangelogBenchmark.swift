import LifecycleEngine

extension Benchmark {
    /// One partition's whole state through the changelog format, without Kafka: every user of
    /// an engine that saw `days` of events encoded as changelog records, then applied to an
    /// empty engine (a restore's work once the records have arrived).
    static func changelog(rules: CompiledRules, population: Population, days: Int) throws {
        var (engine, _) = engineAfter(days: days, of: population, rules: rules)
        engine.trackChanges()
        engine.markAllChanged()
        var bytes: [UInt8] = []
        var spans: [(key: Range<Int>, value: Range<Int>)] = []
        spans.reserveCapacity(engine.userCount)
        let encodeSeconds = measure {
            engine.beginChangelogCut(nextOffset: 0)
            _ = engine.continueChangelogCut(maxRecords: .max) { key, value in
                guard let value, !PartitionEngine.isChangelogPosition(key) else { return }
                let keyStart = bytes.count
                bytes.append(contentsOf: key)
                let valueStart = bytes.count
                bytes.append(contentsOf: value)
                spans.append((keyStart..<valueStart, valueStart..<bytes.count))
            }
        }
        var restored = PartitionEngine(rules: rules)
        var failure: SnapshotError?
        let applySeconds = measure {
            bytes.withUnsafeBytes { raw in
                for span in spans {
                    do throws(SnapshotError) {
                        try restored.apply(changelogKey: UnsafeRawBufferPointer(rebasing: raw[span.key]), value: UnsafeRawBufferPointer(rebasing: raw[span.value]))
                    } catch {
                        failure = error
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
        guard restored.userCount == engine.userCount, restored.usersPerStage == engine.usersPerStage else {
            note("restored \(restored.userCount) users, \(restored.usersPerStage) per stage; the original has \(engine.userCount), \(engine.usersPerStage)\n")
            throw SnapshotError("the restored engine differs from the original")
        }
        let users = engine.userCount
        print("| users in one partition | changelog bytes/user (key + record) | encode (users/s) | apply to an empty engine (users/s) | apply time (s) |")
        print("|---:|---:|---:|---:|---:|")
        print("| \(users) | \(bytes.count / max(users, 1)) | \(Int(Double(users) / encodeSeconds)) | \(Int(Double(users) / applySeconds)) | \(String(format: "%.2f", applySeconds)) |")
    }
}

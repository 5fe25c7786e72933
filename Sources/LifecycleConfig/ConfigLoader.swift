import Foundation
import LifecycleEngine
import Yams

/// Reads a YAML config into validated, compiled rules and daemon settings. Nothing runs on
/// a config that did not load: every problem is reported as `FILE:LINE:COL: message`.
/// Problems of shape and type are reported together; problems of meaning (conditions,
/// stages), which need the shapes right, are reported together once there are none.
public enum ConfigLoader {
    static let topLevelKeys = ["version", "kafka", "events", "http", "state", "counters", "attributes", "lifecycle", "triggers", "erase_on", "holdout", "alerts", "processing"]

    /// YAML 1.2's core schema: `on`, `yes` and `no` are text, so a plain key and a quoted
    /// one are the same key (Yams' default, YAML 1.1, makes a plain `on` a boolean).
    static let coreSchema: Resolver = {
        let rules = [
            (Tag.Name.null, "^(?:~|null|Null|NULL|)$"),
            (.bool, "^(?:true|True|TRUE|false|False|FALSE)$"),
            (.int, "^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
            (.float, "^(?:[-+]?(?:\\.[0-9]+|[0-9]+(?:\\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"),
        ]
        return rules.reduce(Resolver.basic) { resolver, rule in
            // The patterns are constants: a failure here is a bug, not a config problem.
            try! resolver.appending(rule.0, rule.1)
        }
    }()

    public static func load(path: String) throws(ConfigErrors) -> LoadedConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigErrors(ConfigError(file: path, line: 0, column: 0, message: "cannot read the config: \(reason)"))
        }
        return try load(text: text, file: path)
    }

    public static func load(text: String, file: String) throws(ConfigErrors) -> LoadedConfig {
        let yaml = YAMLCursor(file: file)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text, coreSchema) else {
                throw ConfigErrors(ConfigError(file: file, line: 1, column: 1, message: "the config is empty"))
            }
            root = node
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(syntaxError(error, file: file))
        }
        let top: Node.Mapping
        do {
            top = try yaml.mapping(root, "the config")
        } catch {
            throw ConfigErrors(error)
        }
        yaml.checkKeys(top, allowed: topLevelKeys, "the config")
        var reader = RulesReader(yaml: yaml)
        let rules = reader.rules(top, root: root)
        let settings = SettingsReader(yaml: yaml).settings(top, triggerTopics: reader.triggerTopics)
        guard yaml.problems.errors.isEmpty else { throw ConfigErrors(yaml.problems.errors) }
        var hash = StableHash()
        hash.combine(text)
        let version = rules.version ?? String(hash.hex64.prefix(12))
        do {
            let compiled = try CompiledRules(rules, configVersion: version)
            return LoadedConfig(rules: rules, compiled: compiled, settings: settings, configVersion: version)
        } catch {
            throw ConfigErrors(error.errors.map { error in
                let location = error.location == .unknown ? SourceLocation(line: 1, column: 1) : error.location
                return ConfigError(file: file, line: location.line, column: location.column, message: error.message)
            })
        }
    }

    private static func syntaxError(_ error: Error, file: String) -> ConfigError {
        guard let yamlError = error as? YamlError else {
            return ConfigError(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
            return ConfigError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)\(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column,
                message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in this mapping: each name may appear once")
        default:
            return ConfigError(file: file, line: 1, column: 1, message: "invalid YAML: \(yamlError)")
        }
    }
}

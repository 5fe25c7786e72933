/// A config problem at a place in the file, printed as `FILE:LINE:COL: message`.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `FILE:LINE:COL: message`, or `FILE: message` for problems with the file as a whole.
    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// Every problem found in a config, by line; on one line, in the order found (an unknown
/// key before the missing one it was probably meant to be).
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// At most this many are printed, then how many more there are.
    public static let printLimit = 20

    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
    }

    init(_ error: ConfigError) { errors = [error] }

    /// One `FILE:LINE:COL: message` per line, up to `printLimit`.
    public var description: String {
        var lines = errors.prefix(Self.printLimit).map(\.description)
        if errors.count > Self.printLimit { lines.append("... and \(errors.count - Self.printLimit) more") }
        return lines.joined(separator: "\n")
    }
}

/// The problems a config reader has recorded so far (shared by the readers of one load).
final class ConfigProblems {
    var errors: [ConfigError] = []
}

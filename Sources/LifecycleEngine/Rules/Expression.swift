/// The condition language of `when:` and `where:`: comparisons joined by `and`, `or`, `not`
/// and parentheses. Operands are names (counters, attributes, `stage`, `inactive_for`,
/// `in_stage_for`), numbers, quoted strings and durations such as `7d`.
///
/// There is deliberately no arithmetic: every comparison is between a name and a literal
/// or two names, which keeps conditions readable and lets the engine compute exactly when a
/// time-based comparison can change (its timers) instead of polling.
public indirect enum Expression: Sendable, Equatable {
    case literal(Bool)
    case not(Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(Operand, Comparison, Operand)
}

public enum Comparison: String, Sendable, Equatable, CaseIterable {
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case equal = "==", notEqual = "!="

    /// The same comparison with its operands swapped (`3 < x` is `x > 3`).
    public var swapped: Comparison {
        switch self {
        case .less: .greater
        case .lessOrEqual: .greaterOrEqual
        case .greater: .less
        case .greaterOrEqual: .lessOrEqual
        case .equal, .notEqual: self
        }
    }

    public func holds<T: Comparable>(_ lhs: T, _ rhs: T) -> Bool {
        switch self {
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        case .equal: lhs == rhs
        case .notEqual: lhs != rhs
        }
    }
}

public struct Operand: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case name(String)
        case number(Double)
        case string(String)
        case duration(Int64)
    }

    public var kind: Kind
    /// Character offset of the operand in the expression text, for error locations.
    public var offset: Int
}

/// A syntax error at a character offset in the expression text.
public struct ExpressionError: Error, Sendable, Equatable {
    public var message: String
    public var offset: Int
}

extension Expression {
    /// How deeply `and`, `or`, `not` and parentheses may nest. The parser, the compiler and
    /// the tree itself are recursive: without a bound, a long enough condition overflows the
    /// stack. A chain `a and b and c` nests one level per operator.
    public static let maxDepth = 100

    /// Parses the condition language; errors carry the character offset of the problem.
    public static func parse(_ text: String) throws(ExpressionError) -> Expression {
        var parser = ExpressionParser(tokens: try ExpressionLexer.tokenize(text), endOffset: text.count)
        let expression = try parser.parseOr().expression
        if let extra = parser.peek {
            throw ExpressionError(message: "unexpected \(extra.kind.display) after the end of the condition", offset: extra.offset)
        }
        return expression
    }

    /// Every operand, left to right (for validation and evidence).
    public var operands: [Operand] {
        switch self {
        case .literal: []
        case .not(let inner): inner.operands
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.operands + rhs.operands
        case .compare(let lhs, _, let rhs): [lhs, rhs]
        }
    }
}

private struct Token: Equatable {
    enum Kind: Equatable {
        case name(String)
        case number(Double)
        case string(String)
        case duration(Int64)
        case comparison(Comparison)
        case open, close

        var display: String {
            switch self {
            case .name(let name): "'\(name)'"
            case .number(let number): "number \(number)"
            case .string(let string): "string '\(string)'"
            case .duration(let duration): "duration \(Millis.formatDuration(duration))"
            case .comparison(let op): "'\(op.rawValue)'"
            case .open: "'('"
            case .close: "')'"
            }
        }
    }

    var kind: Kind
    var offset: Int
}

private enum ExpressionLexer {
    static func tokenize(_ text: String) throws(ExpressionError) -> [Token] {
        let chars = Array(text)
        var tokens: [Token] = []
        var index = 0
        while index < chars.count {
            let char = chars[index]
            let start = index
            if char == " " || char == "\t" || char == "\n" {
                index += 1
            } else if char == "(" || char == ")" {
                tokens.append(Token(kind: char == "(" ? .open : .close, offset: start))
                index += 1
            } else if char == "'" || char == "\"" {
                index += 1
                while index < chars.count, chars[index] != char { index += 1 }
                guard index < chars.count else {
                    throw ExpressionError(message: "unterminated string: add the closing \(char)", offset: start)
                }
                tokens.append(Token(kind: .string(String(chars[(start + 1)..<index])), offset: start))
                index += 1
            } else if "<>=!".contains(char) {
                var symbol = String(char)
                if index + 1 < chars.count, chars[index + 1] == "=" { symbol.append("=") }
                guard let op = Comparison(rawValue: symbol) else {
                    throw ExpressionError(
                        message: "unknown operator '\(symbol)': expected one of < <= > >= == !=", offset: start)
                }
                tokens.append(Token(kind: .comparison(op), offset: start))
                index += symbol.count
            } else if char.isNumber || (char == "-" && index + 1 < chars.count && chars[index + 1].isNumber) {
                index += 1
                while index < chars.count, chars[index].isNumber || chars[index] == "." || chars[index].isLetter {
                    index += 1
                }
                tokens.append(Token(kind: try number(String(chars[start..<index]), at: start), offset: start))
            } else if char.isLetter || char == "_" {
                while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" {
                    index += 1
                }
                tokens.append(Token(kind: .name(String(chars[start..<index])), offset: start))
            } else {
                throw ExpressionError(message: "unexpected character '\(char)'", offset: start)
            }
        }
        return tokens
    }

    /// A plain number (`3`, `2.5`, `-1`) or a duration (`7d`, `1d12h`).
    private static func number(_ text: String, at offset: Int) throws(ExpressionError) -> Token.Kind {
        if let value = Double(text), !text.contains(where: \.isLetter) { return .number(value) }
        if let duration = Millis.parseDuration(text) { return .duration(duration) }
        throw ExpressionError(
            message: "'\(text)' is neither a number nor a duration (expected e.g. 3, 2.5, 30m, 7d, 1d12h)",
            offset: offset)
    }
}

private struct ExpressionParser {
    let tokens: [Token]
    let endOffset: Int
    var position = 0

    init(tokens: [Token], endOffset: Int) {
        self.tokens = tokens
        self.endOffset = endOffset
    }

    var peek: Token? { position < tokens.count ? tokens[position] : nil }

    private mutating func keyword(_ word: String) -> Bool {
        guard let token = peek, token.kind == .name(word) else { return false }
        position += 1
        return true
    }

    /// An expression with the depth of its tree.
    struct Parsed {
        var expression: Expression
        var depth: Int
    }

    /// `not` and parentheses entered and not yet left: the parser's own recursion.
    private var nesting = 0

    mutating func parseOr() throws(ExpressionError) -> Parsed {
        var result = try parseAnd()
        while let token = peek, keyword("or") {
            let rhs = try parseAnd()
            result = Parsed(expression: .or(result.expression, rhs.expression), depth: try depth(result, rhs, at: token))
        }
        return result
    }

    private mutating func parseAnd() throws(ExpressionError) -> Parsed {
        var result = try parseUnary()
        while let token = peek, keyword("and") {
            let rhs = try parseUnary()
            result = Parsed(expression: .and(result.expression, rhs.expression), depth: try depth(result, rhs, at: token))
        }
        return result
    }

    private mutating func parseUnary() throws(ExpressionError) -> Parsed {
        if let token = peek, keyword("not") {
            let inner = try nested(at: token) { (parser) throws(ExpressionError) in try parser.parseUnary() }
            return Parsed(expression: .not(inner.expression), depth: try depth(inner, at: token))
        }
        if keyword("true") { return Parsed(expression: .literal(true), depth: 1) }
        if keyword("false") { return Parsed(expression: .literal(false), depth: 1) }
        if let token = peek, token.kind == .open {
            position += 1
            let inner = try nested(at: token) { (parser) throws(ExpressionError) in try parser.parseOr() }
            guard let close = peek, close.kind == .close else {
                throw ExpressionError(message: "expected ')' to close the '(' here", offset: token.offset)
            }
            position += 1
            return inner
        }
        let lhs = try parseOperand()
        guard let token = peek, case .comparison(let op) = token.kind else {
            throw ExpressionError(
                message: "expected a comparison (< <= > >= == !=) after \(describe(lhs))",
                offset: peek?.offset ?? endOffset)
        }
        position += 1
        return Parsed(expression: .compare(lhs, op, try parseOperand()), depth: 1)
    }

    /// Parses what a `not` or a `(` at `token` encloses, refusing to recurse too deeply.
    private mutating func nested(
        at token: Token, _ body: (inout ExpressionParser) throws(ExpressionError) -> Parsed
    ) throws(ExpressionError) -> Parsed {
        guard nesting < Expression.maxDepth else { throw tooDeep(at: token) }
        nesting += 1
        defer { nesting -= 1 }
        return try body(&self)
    }

    /// The depth of an operator at `token` over `operands`, if within the bound.
    private func depth(_ operands: Parsed..., at token: Token) throws(ExpressionError) -> Int {
        let depth = operands.map(\.depth).max()! + 1
        guard depth <= Expression.maxDepth else { throw tooDeep(at: token) }
        return depth
    }

    private func tooDeep(at token: Token) -> ExpressionError {
        ExpressionError(
            message: "the condition nests too deeply: at most \(Expression.maxDepth) levels of and, or, not and parentheses; simplify it",
            offset: token.offset)
    }

    private mutating func parseOperand() throws(ExpressionError) -> Operand {
        guard let token = peek else {
            throw ExpressionError(message: "the condition ends too early: expected a name or a value", offset: endOffset)
        }
        let kind: Operand.Kind
        switch token.kind {
        case .name(let name) where ["and", "or", "not"].contains(name):
            throw ExpressionError(message: "expected a name or a value, found '\(name)'", offset: token.offset)
        case .name(let name): kind = .name(name)
        case .number(let number): kind = .number(number)
        case .string(let string): kind = .string(string)
        case .duration(let duration): kind = .duration(duration)
        case .comparison, .open, .close:
            throw ExpressionError(message: "expected a name or a value, found \(token.kind.display)", offset: token.offset)
        }
        position += 1
        return Operand(kind: kind, offset: token.offset)
    }

    private func describe(_ operand: Operand) -> String {
        switch operand.kind {
        case .name(let name): "'\(name)'"
        case .number(let number): "\(number)"
        case .string(let string): "'\(string)'"
        case .duration(let duration): Millis.formatDuration(duration)
        }
    }
}

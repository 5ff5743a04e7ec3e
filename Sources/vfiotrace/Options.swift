import ArgumentParser
import Report
import Conform
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// A value the library knows by name: a kernel profile, a profile choice,
/// a backend. ``Named`` turns it into a command-line argument.
protocol NamedValue {
    init?(name: String)
    /// Every accepted name, for help, completions and the error message.
    static var names: [String] { get }
    /// What a value is called in messages: `profile`, `backend`.
    static var kind: String { get }
}

/// A named value as typed, checked in `validate()`, so that a wrong one
/// is one line saying what is known ("unknown profile '4.19'; known: …")
/// rather than argument-parser's list. Help shows the values and shell
/// completions offer them.
struct Named<Value: NamedValue>: ExpressibleByArgument {
    let text: String

    init(argument: String) { text = argument }
    init(_ text: String) { self.text = text }

    var value: Value? { Value(name: text) }

    /// The value, or the error that names what is known.
    func checked() throws -> Value {
        guard let v = value else {
            throw ValidationError("unknown \(Value.kind) '\(text)'; known: " + Value.names.joined(separator: ", "))
        }
        return v
    }

    static var allValueStrings: [String] { Value.names }
    static var defaultCompletionKind: CompletionKind { .list(Value.names) }
    var defaultValueDescription: String { text }
}

extension KernelProfile: NamedValue {
    init?(name: String) {
        guard let p = Self.preset(named: name) else { return nil }
        self = p
    }
    static var names: [String] { presets.map(\.name) }
    static var kind: String { "profile" }
}

extension ProfileChoice: NamedValue {
    static var kind: String { "profile" }
}

/// Where events run.
enum BackendKind: String, NamedValue {
    /// The bitmap engine under a profile.
    case engine
    /// This machine's kernel, through /dev/vfio.
    case kernel

    init?(name: String) {
        // `vfio` was the real backend's first name; it stays an alias.
        self.init(rawValue: name == "vfio" ? "kernel" : name)
    }
    static var names: [String] { ["engine", "kernel"] }
    static var kind: String { "backend" }
}

/// The defaults of one command's backend options.
protocol BackendDefaults {
    static var backend: BackendKind { get }
    static var profile: String { get }
    /// Which of `auto` and `all` the command can use besides the presets.
    static var profileKeywords: Set<String> { get }
}

/// The backend choice, spelled the same in every command that runs events:
/// `--backend engine|kernel`, `--profile`, `--group`, `--device`.
struct BackendOptions<Defaults: BackendDefaults>: ParsableArguments {
    @Option(help: "Where events run: engine (the bitmap engine, a model of vfio_iommu_type1.c) or kernel (this machine's VFIO through /dev/vfio; vfio is an alias).")
    var backend: Named<BackendKind> = Named(Defaults.backend.rawValue)

    @Option(help: "engine: the kernel profile (`vfiotrace profiles` lists them).")
    var profile: Named<ProfileChoice> = Named(Defaults.profile)

    @Option(name: .customLong("group"), help: ArgumentHelp(
        "kernel: a real group to use, /dev/vfio/N (bound to the trace's groups in the order it opens them, by kind) or TRACE=/dev/vfio/N. Repeatable.",
        valueName: "group"))
    var groups: [String] = []

    @Option(name: .customLong("device"), help: ArgumentHelp(
        "kernel: a PCI device (e.g. 0000:00:03.0) whose IOMMU group to use. Repeatable.", valueName: "bdf"))
    var devices: [String] = []

    @Option(help: ArgumentHelp(
        "kernel: at most this much memory pinned by the kernel for mappings of containers with an IOMMU-backed group (root has no memlock limit); an event past it is not replayed. Default: half of this machine's memory.",
        valueName: "size"))
    var pinBudget: String?

    func validate() throws {
        if let pinBudget, TextSyntax.number(Substring(pinBudget)) == nil {
            throw ValidationError("--pin-budget \(pinBudget): give a size (512M, 2G, 0x10000000)")
        }
        let kind = try backend.checked()
        if pinBudget != nil && kind != .kernel { throw ValidationError("--pin-budget is for --backend kernel") }
        let choice = try profile.checked()
        if case .preset = choice {} else if !Defaults.profileKeywords.contains(choice.description) {
            throw ValidationError("--profile \(choice) is not for this command; give a preset: " + KernelProfile.names.joined(separator: ", "))
        }
        switch kind {
        case .engine where !(groups.isEmpty && devices.isEmpty):
            throw ValidationError("--group and --device are for --backend kernel")
        case .kernel where groups.isEmpty && devices.isEmpty:
            throw ValidationError("--backend kernel needs --group /dev/vfio/N or --device BDF: it opens only what it is told to")
        default: break
        }
    }

    /// `--pin-budget` (checked in `validate()`), else the default.
    var pinBudgetBytes: UInt64 { pinBudget.flatMap { TextSyntax.number(Substring($0)) } ?? RealVFIOBackend.defaultPinBudget }

    /// Checked in `validate()`.
    var kind: BackendKind { backend.value! }
    var choice: ProfileChoice { profile.value! }

    /// The real-VFIO backend for `--group` and `--device`; it ends the
    /// process on SIGINT/SIGTERM so the kernel drops what it mapped.
    func realBackend(traceKinds: [UInt32: GroupKind]) throws -> RealVFIOBackend {
        installExitOnSignal()
        do { return try RealVFIOBackend.open(groups: groups, devices: devices, traceKinds: traceKinds, pinBudget: pinBudgetBytes) } catch {
            throw Failure.trouble("\(error)")
        }
    }

    /// The conformance target: the engine under each profile chosen, or
    /// this machine's kernel.
    func conformTargets(host: HostModel = HostModel()) throws -> [ConformRunner.Target] {
        guard kind == .kernel else { return choice.profiles.map { .engine($0, host: host) } }
        installExitOnSignal()
        do { return [try .kernel(groups: groups, devices: devices, pinBudget: pinBudgetBytes)] } catch { throw Failure.trouble("\(error)") }
    }
}

/// Options shared by the commands that compare outcomes: how to compare
/// and how much to print.
struct ComparisonArguments: ParsableArguments {
    @Flag(help: "Do not count bitmap bits outside every mapping (holes, past the range end) as divergences; they are still shown.")
    var lenient = false

    @Option(parsing: .unconditional, help: "How many divergent events to print in full (0: only the summary).")
    var maxDivergences = 10

    func validate() throws {
        guard maxDivergences >= 0 else { throw ValidationError("--max-divergences must be 0 or more") }
    }

    var options: ComparisonOptions { ComparisonOptions(strictOutsideMappings: !lenient) }
}

extension ReportFormat: ExpressibleByArgument {}

extension Shard: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// `--host FILE`: the engine's host from a host description
/// (`vfiotrace host` prints one to start from).
struct HostOption: ParsableArguments {
    @Option(name: .customLong("host"), help: ArgumentHelp(
        "engine: the host under the container (page sizes, IOVA ranges, DMA_CC, nesting, ...) from a host description; `vfiotrace host` prints one to edit. Default: the lab's VT-d.",
        valueName: "file"), completion: .file())
    var file: String?

    /// The host the file describes, or nil without `--host`.
    func described() throws -> HostModel? {
        guard let file else { return nil }
        return try loadHostDescription(file)
    }
}

/// `--host FILE` or the host a trace states (``HostModel/stated(by:over:)``),
/// for the commands that run a trace on the engine.
struct TraceHostOptions: ParsableArguments {
    @OptionGroup var given: HostOption

    @Flag(help: "engine: keep the default host (the lab's VT-d) even where the trace states its own page sizes, IOVA ranges, DMA_CC or nesting.")
    var defaultHost = false

    func validate() throws {
        if defaultHost && given.file != nil { throw ValidationError("give --host FILE or --default-host, not both") }
    }

    /// The engine's host for `events`, and a phrase saying where it came
    /// from ("" for the defaults).
    func host(for events: some Sequence<Event>) throws -> (HostModel, String) {
        if let h = try given.described() { return (h, "host from \(given.file!)") }
        if defaultHost { return (HostModel(), "") }
        let (h, traits) = HostModel.stated(by: events)
        return (h, traits.isEmpty ? "" : "host from the trace: " + traits.joined(separator: ", "))
    }
}

/// A host description file: at most 1 MiB of UTF-8 (`-`: standard input).
func loadHostDescription(_ path: String) throws -> HostModel {
    if path != "-" {
        let size: Int
        do { size = try TraceFile(path: path).size } catch { throw Failure.trouble("\(path): \(error)") }
        guard size <= 1 << 20 else { throw Failure.trouble("\(path): \(size) bytes, over 1 MiB: not a host description") }
    }
    let text: String
    do { text = try EventInput.readText(path) } catch { throw Failure.trouble("\(error)") }
    do { return try HostModel(description: text, path: path) } catch { throw Failure.trouble("\(error)") }
}

/// Help text as prose for argument-parser to wrap once, to the terminal's
/// width: the source keeps paragraphs wrapped at a readable width, and
/// this joins each paragraph's lines (argument-parser would otherwise break
/// them again at 80 columns, mid-sentence). A blank line ends a paragraph;
/// an indented line (an example) and a line ending in ':' stay lines.
enum Help {
    static func flow(_ text: String) -> String {
        var out: [String] = []
        var joining = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let keep = line.isEmpty || line.first == " "
            if !keep && joining, let last = out.popLast() {
                out.append(last + " " + line)
            } else {
                out.append(String(line))
            }
            joining = !keep && line.last != ":"
        }
        return out.joined(separator: "\n")
    }
}

/// `--color auto|always|never`: whether the verdicts are coloured.
enum ColorChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, always, never

    /// `auto`: only on a terminal, and not with NO_COLOR set (to anything
    /// but the empty string, as no-color.org asks) or TERM=dumb. The option
    /// wins over the environment.
    func enabled(forFD fd: Int32) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .auto:
            if let v = getenv("NO_COLOR"), v.pointee != 0 { return false }
            if let t = getenv("TERM"), String(cString: t) == "dumb" { return false }
            return isatty(fd) == 1
        }
    }
}

/// `--html FILE`: the command's findings also as one self-contained HTML page.
struct HTMLReportOptions: ParsableArguments {
    @Option(name: .customLong("html"),
            help: ArgumentHelp("Also write the findings as one self-contained HTML page (bitmap differences drawn to scale; `-`: standard output, the text report then goes to standard error).",
                               valueName: "file"),
            completion: .file(extensions: ["html"]))
    var path: String?

    /// Whether the page takes standard output.
    var onStandardOutput: Bool { path == "-" }

    /// Writes `report` where `--html` says, beside the target then renamed;
    /// never over one of `inputs`.
    func write(_ report: HTMLReport, inputs: [String]) throws {
        guard let path else { return }
        if path == "-" { return printRaw(report.render(), fd: 1) }
        try writeTextFile(path, report.render(), inputs: inputs)
    }
}

extension ComparisonArguments {
    /// An HTML page for a comparing command: it draws at least 50
    /// divergences, more when --max-divergences asks for more.
    func page(_ title: String, facts: [(String, String)]) -> HTMLReport {
        var page = HTMLReport(title: title, cardLimit: max(50, maxDivergences))
        page.facts = facts
        return page
    }
}

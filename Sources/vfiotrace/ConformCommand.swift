import ArgumentParser
import Conform
import Replay
import Trace
#if canImport(Glibc)
import Glibc
#endif

struct Conform: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the named conformance rules on the engine or on this machine's kernel.",
        discussion: """
        Each rule (corpora/rules/*.vfs) is a scenario with stated outcomes, written for a
        range of kernel behaviour; the variant for the profile under test runs on a fresh
        backend. Verdicts: PASS, FAIL (an outcome differed: the first divergence is shown),
        BROK (the check could not run), CONF (not applicable: other kernel versions, or no
        pinning device), WARN (matched, but the kernel modelled would crash on the way).

        With no arguments: every rule on the engine's latest profile, as text.
        --profile all runs every preset and prints a rules x profiles matrix. --backend
        kernel runs on this machine's VFIO (root; --group/--device as for replay; rules
        with emulated groups need the vfiotrace_pin test device's group, else CONF) and
        picks each rule's variant from the kernel release.

        Examples:
          vfiotrace conform
          vfiotrace conform --profile all
          vfiotrace conform --rules 'repop.*' --format ktap
          vfiotrace conform --profile 5.8 --format junit --output conform-5.8.xml --shard 2/4
          vfiotrace conform --backend kernel --group $VFIO_GROUP --group $VFIO_MDEV_GROUP

        Exit codes: 0 every rule PASS, CONF or WARN; 1 some FAIL; 2 some BROK, or trouble.
        """
    )

    @Option(help: "Where the rules run: engine or kernel.")
    var backend = "engine"

    @Option(help: "Engine profile: a preset, all, or auto (only with --backend engine).")
    var profile = "latest"

    @Option(name: .customLong("group"), help: ArgumentHelp("kernel: a real group to use, /dev/vfio/N (repeatable).", valueName: "group"))
    var groups: [String] = []

    @Option(name: .customLong("device"), help: ArgumentHelp("kernel: a PCI device whose group to use (repeatable).", valueName: "bdf"))
    var devices: [String] = []

    @Option(help: "Only rules whose ID matches this glob (e.g. 'pgsize.*').")
    var rules: String?

    @Option(help: "Output format: text, ktap, junit or json.")
    var format = "text"

    @Option(name: .shortAndLong, help: "Write the report to this file instead of standard output.")
    var output: String?

    @Option(help: "Run only shard I of N (1-based), e.g. 2/4; the shards together run every rule once.")
    var shard: String?

    @Option(help: "The rule directory (default: corpora/rules, found from here or from the executable).")
    var corpus: String?

    func validate() throws {
        guard backend == "engine" || backend == "kernel" else { throw ValidationError("unknown backend '\(backend)': use engine or kernel") }
        guard ReportFormat(rawValue: format) != nil else { throw ValidationError("unknown format '\(format)': use text, ktap, junit or json") }
        if backend == "engine" {
            guard ["all", "auto"].contains(profile) || KernelProfile.preset(named: profile) != nil else {
                throw ValidationError("unknown profile '\(profile)'; known: all, " + KernelProfile.presets.map(\.name).joined(separator: ", "))
            }
            if !(groups.isEmpty && devices.isEmpty) { throw ValidationError("--group and --device are for --backend kernel") }
        } else if groups.isEmpty && devices.isEmpty {
            throw ValidationError("--backend kernel needs --group /dev/vfio/N or --device BDF: it opens only what it is told to")
        }
        if let shard { _ = try parseShard(shard) }
    }

    func parseShard(_ s: String) throws -> (Int, Int) {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 1, i <= n else {
            throw ValidationError("--shard takes I/N with 1 <= I <= N, e.g. 2/4")
        }
        return (i, n)
    }

    func run() throws {
        let dir = try corpusDirectory()
        let catalogue = try loadCatalogue(dir)
        var selected = catalogue.select(rules)
        if rules != nil && selected.isEmpty { throw Failure.trouble("--rules \(rules!): no rule matches (\(catalogue.rules.count) rules in \(dir))") }
        if let shard {
            let (i, n) = try parseShard(shard)
            selected = Catalogue.shard(selected, index: i, of: n)
        }
        let targets = try makeTargets()
        var runs: [TargetResults] = []
        for t in targets {
            var progress = Progress(label: "conform \(t.name)", total: UInt64(selected.count))
            var results: [RuleResult] = []
            for (k, rule) in selected.enumerated() {
                let r = ConformRunner.run(rule, on: t)
                results.append(r)
                progress.update(UInt64(k + 1) << 12)
                // On a real kernel each verdict goes to stderr at once, so a
                // hang or a crash shows which rule it was.
                if backend == "kernel" { printRaw("conform: \(r.verdict.rawValue) \(rule.id)\n", fd: 2) }
            }
            progress.finish()
            runs.append(TargetResults(target: t.name, results: results))
        }
        let fmt = ReportFormat(rawValue: format)!
        let report = Reporter.render(runs, format: fmt, color: fmt == .text && output == nil && isatty(1) == 1)
        if let output {
            do {
                let f = try TraceFileWriter(path: output)
                try f.write(report)
            } catch { throw Failure.trouble("\(output): \(error)") }
            printRaw(runs.map(\.summary).joined(separator: "\n") + "\n", fd: 1)
        } else {
            var out = OutputBuffer()
            for line in report.split(separator: "\n", omittingEmptySubsequences: false).dropLast() { out.line(String(line)) }
            out.flush()
        }
        let all = runs.flatMap(\.results)
        if all.contains(where: { $0.verdict == .brok }) { throw ExitCode(2) }
        if all.contains(where: { $0.verdict == .fail }) { throw ExitCode(1) }
    }

    func makeTargets() throws -> [ConformRunner.Target] {
        if backend == "engine" {
            switch profile {
            case "all": return KernelProfile.presets.map { .engine($0) }
            case "auto": return [.engine(.latest)]
            default: return [.engine(KernelProfile.preset(named: profile)!)]
            }
        }
        installExitOnSignal()
        return [try kernelConformTarget(groups: groups, devices: devices)]
    }

    func corpusDirectory() throws -> String {
        if let corpus {
            guard isDirectory(corpus) else { throw Failure.trouble("--corpus \(corpus): not a directory") }
            return corpus
        }
        if isDirectory("corpora/rules") { return "corpora/rules" }
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, 4095)
        if n > 0 {
            var path = String(decoding: exe.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for _ in 0..<5 {
                guard let slash = path.lastIndex(of: "/") else { break }
                path = String(path[..<slash])
                if isDirectory(path + "/corpora/rules") { return path + "/corpora/rules" }
            }
        }
        throw Failure.trouble("no rule corpus: corpora/rules is not here or above the executable; give --corpus DIR")
    }

    func isDirectory(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    func loadCatalogue(_ dir: String) throws -> Catalogue {
        guard let all = directoryEntries(dir) else { throw Failure.trouble("\(dir): \(String(cString: strerror(errno)))") }
        let names = all.filter { $0.hasSuffix(".vfs") }
        var files: [(path: String, text: String)] = []
        for name in names.sorted() {
            let path = dir + "/" + name
            files.append((path, try readScenarioText(path)))
        }
        guard !files.isEmpty else { throw Failure.trouble("\(dir): no rule scenarios (*.vfs)") }
        do { return try Catalogue(files: files) } catch { throw Failure.trouble("\(error)") }
    }
}

/// Conformance on this machine's kernel: the same real groups for every
/// rule, a fresh backend each; each rule's variant is picked by the profile
/// the kernel's release maps to.
func kernelConformTarget(groups: [String], devices: [String]) throws -> ConformRunner.Target {
    let probe = try makeRealVFIOBackend(groups: groups, devices: devices, traceKinds: [:])
    let nodes = probe.groups
    return ConformRunner.Target(name: "vfio:\(probe.kernelRelease)",
                                profile: KernelProfile.forKernelRelease(probe.kernelRelease) ?? .latest,
                                hasPinningDevice: nodes.contains { RealVFIOBackend.isEmulatedGroup($0) }) { events in
        .success(RealVFIOBackend(groups: nodes, traceKinds: RealVFIOBackend.traceGroupKinds(events)))
    }
}

/// Writes a whole text file, replacing it.
struct TraceFileWriter {
    let fd: Int32
    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw Failure.trouble("\(path): \(String(cString: strerror(errno)))") }
    }

    func write(_ s: String) throws {
        defer { close(fd) }
        let bytes = Array(s.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw Failure.trouble(String(cString: strerror(errno))) }
            done += n
        }
    }
}

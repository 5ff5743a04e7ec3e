import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Finds the vfiotrace checkout a command runs from: the rule corpus
/// (`corpora/rules`) and the VM lab (`scripts/vm-lab`) live there, not
/// next to an installed binary. The current directory is tried first, then
/// the directories above the executable (`.build/release/vfiotrace` sits
/// three levels below the checkout).
public enum RepositoryLocation {
    /// The first of the current directory and the executable's ancestors
    /// that holds `relativePath` (an executable file, or a directory), as
    /// an absolute path.
    public static func root(holding relativePath: String, isDirectory: Bool) -> String? {
        func holds(_ dir: String) -> Bool {
            let p = dir + "/" + relativePath
            return isDirectory ? Self.isDirectory(p) : access(p, X_OK) == 0
        }
        let cwd = Posix.currentDirectory()
        if holds(cwd) { return cwd }
        guard var path = Posix.executablePath() else { return nil }
        for _ in 0..<5 {
            guard let slash = path.lastIndex(of: "/") else { break }
            path = String(path[..<slash])
            if holds(path) { return path }
        }
        return nil
    }

    /// The checkout holding the VM lab, for replays on real kernels.
    public static func labRoot() -> String? { root(holding: "scripts/vm-lab", isDirectory: false) }

    /// The rule directory: `given` when set (it must be a directory), else
    /// `corpora/rules` here or above the executable.
    public static func ruleDirectory(given: String?) throws(CatalogueError) -> String {
        if let given {
            guard isDirectory(given) else { throw CatalogueError("--corpus \(given): not a directory") }
            return given
        }
        if isDirectory("corpora/rules") { return "corpora/rules" }
        if let root = root(holding: "corpora/rules", isDirectory: true) { return root + "/corpora/rules" }
        throw CatalogueError("no rule corpus: corpora/rules is not here or above the executable; give --corpus DIR")
    }

    static func isDirectory(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

}

/// Why the rule catalogue could not be found or read.
public struct CatalogueError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Catalogue {
    /// Every `*.vfs` of `directory`, in name order.
    public init(directory: String) throws(CatalogueError) {
        guard let all = directoryEntries(directory) else {
            throw CatalogueError("\(directory): \(String(cString: strerror(errno)))")
        }
        var files: [(path: String, text: String)] = []
        for name in all where name.hasSuffix(".vfs") {
            let path = directory + "/" + name
            do throws(InputError) { files.append((path, try EventInput.readText(path))) } catch {
                throw CatalogueError(error.description)
            }
        }
        guard !files.isEmpty else { throw CatalogueError("\(directory): no rule scenarios (*.vfs)") }
        do throws(LoadError) { try self.init(files: files) } catch { throw CatalogueError(error.description) }
    }
}

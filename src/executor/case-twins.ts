/**
 * Case twins on a case-insensitive destination: two paths of one run that fold to the same
 * name (`A/x.bin` and `a/x.bin`, `Model.bin` and `model.bin`), or whose folders do (`A/x` and
 * `a/y` would both land in one folder, spelled as whichever came first, and the next listing
 * would disagree with the keys).
 *
 * The first path in plan order claims the name; every later path that folds onto a claimed
 * name with another spelling is refused. Claims are made when an operation is queued, in plan
 * order (code-point order: upper case before lower case), never when a write completes, so
 * which twin is refused depends on the plan alone, not on timing; nothing is overwritten, and
 * the refused twin stays where it was (in the source). A refused path claims nothing.
 *
 * Holds one entry per transferred path and folder of the run, only for destinations that are
 * case-insensitive.
 */
import { foldCase } from '../stores/local/case-fold.js';

export interface CaseClash {
  /** The claimed spelling this path (or its folder `folder`) collides with. */
  other: string;
  /** Set when the clash is on a folder of the path: its spelling in this path. */
  folder?: string;
}

export class CaseTwins {
  private readonly claimed = new Map<string, string>();

  /** Claims `path` and its folders, or returns the clash (and claims nothing). */
  claim(path: string): CaseClash | undefined {
    const segs = path.split('/');
    const fresh: [string, string][] = [];
    let prefix = '';
    for (let i = 0; i < segs.length; i++) {
      prefix = i === 0 ? segs[0]! : `${prefix}/${segs[i]!}`;
      const key = foldCase(prefix);
      const seen = this.claimed.get(key);
      if (seen === undefined) fresh.push([key, prefix]);
      else if (seen !== prefix) {
        // Name the twin file itself when there is one (`A/x.bin` for `a/x.bin`), else the folder.
        const file = i === segs.length - 1 ? seen : this.claimed.get(foldCase(path));
        return file !== undefined ? { other: file } : { other: seen, folder: prefix };
      }
    }
    for (const [key, spelling] of fresh) this.claimed.set(key, spelling);
    return undefined;
  }
}

/** The one-line refusal for a path that clashes with `clash` on the destination `display`. */
export function caseClashMessage(verb: string, path: string, clash: CaseClash, display: string): string {
  const mine = clash.folder ?? path;
  const how = mine.normalize('NFC') === clash.other.normalize('NFC') ? 'only in Unicode normalisation' : 'only by case';
  const what = clash.folder === undefined ? 'it differs' : `its folder ${clash.folder} differs`;
  return `refusing to ${verb} ${path}: ${what} ${how} from ${clash.other}, and ${display} is on a case-insensitive file system`;
}

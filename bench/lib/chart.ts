// A dependency-free SVG bar chart: one group per scenario, one bar per target, each bar
// scaled to the best value in its group so scenarios with different units sit together.

export interface ChartGroup {
  label: string;
  bars: { name: string; value: number }[];
  higherIsBetter: boolean;
}

const COLORS = ["#1f5fbf", "#6ea2ff", "#2e9d5b", "#c2572b", "#7a2ea0", "#9a8a00"];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function barChart(groups: ChartGroup[]): string {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const barHeight = 16;
  const groupGap = 26;
  const left = 170;
  const width = 720;
  const plot = width - left - 110;
  let y = 40;
  const parts: string[] = [];
  for (const group of groups) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${escape(group.label)}${group.higherIsBetter ? "" : " — lower is better"}</text>`);
    y += 18;
    const best = group.higherIsBetter ? Math.max(...group.bars.map((b) => b.value)) : Math.min(...group.bars.filter((b) => b.value > 0).map((b) => b.value));
    for (const bar of group.bars) {
      // Length shows goodness relative to the best in the group: 1.0 = best.
      const score = bar.value <= 0 || !Number.isFinite(bar.value) ? 0 : group.higherIsBetter ? bar.value / best : best / bar.value;
      const color = COLORS[names.indexOf(bar.name) % COLORS.length];
      parts.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${escape(bar.name)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, score * plot).toFixed(1)}" height="${barHeight}" fill="${color}"/>`);
      const shown = bar.value >= 1000 ? Math.round(bar.value).toLocaleString("en-US") : bar.value.toFixed(2);
      parts.push(`<text x="${left + score * plot + 6}" y="${y + 12}">${shown}</text>`);
      y += barHeight + 4;
    }
    y += groupGap - 4;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">bunchat vs reference servers (medians; bar = relative to the best)</text>
${parts.join("\n")}
</svg>
`;
}

"""Analysis of what the commands wrote: run directories and family tables into pandas
(`analysis.runs`), Pareto fronts and reward landscapes, and figures (`analysis.plot`).
It reads files only; the reward formula it draws is `nas.reward.reward`."""

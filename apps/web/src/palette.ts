// Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito, plus grey and black).
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#CC79A7",
  "#56B4E9",
  "#D55E00",
  "#F0E442",
  "#777777",
  "#000000",
];
export const colour = (i: number) => PALETTE[i % PALETTE.length] as string;

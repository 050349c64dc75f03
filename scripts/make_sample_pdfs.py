"""Generate the multi-page PDFs of sample_corpus/ (run once; the PDFs are committed).

.venv/bin/python scripts/make_sample_pdfs.py
"""

from pathlib import Path

from fpdf import FPDF

OUT = Path(__file__).resolve().parent.parent / "sample_corpus"

MANUALS = {
    "bee_health_field_manual.pdf": (
        "Bee Health Field Manual",
        [
            (
                "American Foulbrood",
                [
                    "American foulbrood (AFB) is caused by the spore-forming bacterium Paenibacillus larvae. "
                    "It kills larvae after their cells are capped. Cappings become sunken, greasy and perforated, "
                    "and the dead larva turns into a coffee-brown mass.",
                    "The matchstick or ropiness test: push a matchstick into a suspect cell and withdraw it slowly. "
                    "If the brown remains stretch into a rope of 2 to 3 centimetres before snapping back, suspect AFB.",
                    "The spores survive for more than 40 years. Infected colonies are usually destroyed by burning, "
                    "and in many countries AFB is a notifiable disease that must be reported to the bee inspector.",
                ],
            ),
            (
                "European Foulbrood",
                [
                    "European foulbrood (EFB) is caused by Melissococcus plutonius and kills larvae before they are capped. "
                    "Affected larvae lie twisted in their cells and turn yellow, then brown, and they melt down.",
                    "Unlike AFB, the remains do not form a rope. Mild cases can be managed by a shook swarm, in which the bees "
                    "are shaken onto fresh foundation and all old comb is destroyed.",
                ],
            ),
            (
                "Nosema",
                [
                    "Nosema is a gut parasite of adult bees caused by the microsporidia Nosema apis and Nosema ceranae. "
                    "Signs include dysentery streaks on the front of the hive in spring and slow colony build-up.",
                    "Diagnosis needs a microscope: crush the abdomens of 30 bees in water and look for the rice-grain shaped "
                    "spores at 400 times magnification. Replacing old comb every year reduces the spore load.",
                ],
            ),
            (
                "Chalkbrood and Small Hive Beetle",
                [
                    "Chalkbrood is a fungal disease caused by Ascosphaera apis. Dead larvae become hard white or grey mummies "
                    "that workers carry out and drop at the entrance. It is worst in damp, cool springs; requeening with "
                    "hygienic stock usually cures it.",
                    "The small hive beetle, Aethina tumida, is a pest whose larvae tunnel through comb and make honey ferment "
                    "into a slime. It is notifiable in the European Union; any sighting must be reported at once.",
                ],
            ),
        ],
    ),
    "winter_preparation.pdf": (
        "Preparing Colonies for Winter",
        [
            (
                "Stores",
                [
                    "A colony in a temperate climate needs 18 to 20 kilograms of honey or syrup stores to survive winter. "
                    "Weigh hives or heft them from the back: a hive that lifts easily is short of food.",
                    "Feed thick syrup of two parts sugar to one part water in September, while bees can still evaporate it. "
                    "From November on, feed fondant placed directly above the cluster instead of syrup.",
                ],
            ),
            (
                "The Winter Cluster",
                [
                    "Below about 14 degrees Celsius bees form a tight cluster. Bees in the core shiver their flight muscles "
                    "to keep the centre at about 35 degrees Celsius while brood is present, while the outer shell of bees "
                    "stays near 10 degrees Celsius.",
                    "The cluster moves slowly upwards through its stores during winter. A colony can starve with honey only a "
                    "few centimetres away if the cluster cannot reach it in a cold spell.",
                ],
            ),
            (
                "Moisture and Ventilation",
                [
                    "Damp kills more colonies than cold. A winter cluster gives off water vapour that condenses on a cold "
                    "crown board and drips onto the bees. Provide top ventilation or an insulated roof so condensation "
                    "forms on the walls instead.",
                    "Open mesh floors stay open all winter; they improve ventilation and let fallen varroa mites drop out.",
                ],
            ),
            (
                "Mice, Woodpeckers and Wind",
                [
                    "Fit mouse guards with holes of 9.5 millimetres by early October: mice move into hives as nights get "
                    "cold and destroy comb. In areas with green woodpeckers, wrap hives in chicken wire.",
                    "Strap hives down or put a heavy stone on the roof, since winter storms can topple them.",
                ],
            ),
        ],
    ),
}


def build(name: str, title: str, pages: list) -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("Kestrel Valley Beekeepers' Association")
    for heading, paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, title if pdf.page_no() == 1 else heading, new_x="LMARGIN", new_y="NEXT")
        if pdf.page_no() == 1:
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 9, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for para in paragraphs:
            pdf.ln(3)
            pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
        pdf.set_auto_page_break(False)
        pdf.set_y(-20)
        pdf.set_font("Helvetica", "I", 9)
        pdf.cell(0, 10, f"{title} - page {pdf.page_no()}", align="C")
        pdf.set_auto_page_break(True, margin=25)
    pdf.output(str(OUT / name))


if __name__ == "__main__":
    for name, (title, pages) in MANUALS.items():
        build(name, title, pages)
        print("wrote", OUT / name)

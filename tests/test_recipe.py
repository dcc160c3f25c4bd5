"""Every face names what ran, term by term, and sets the purified student beside its teacher alone."""
from distill_core.distill.recipe import loss_record, recipe_text, teacher_text, verdict
from distill_core.models.resnet import STAGES
from distill_core.tasks import make_config

AT = {"loss": "at", "placement": "authors", "weights": {s: 1000.0 for s in STAGES}}


def test_the_recipe_names_every_term_and_weight_and_whose_it_is():
    assert recipe_text({**AT, "embedding_weight": 300.0}) == (
        "SimCLR + AT on every stage at 1000 each (authors) + 300 x (1 - cos) on the final embedding (the lab's "
        "addition: the authors' code never runs it beside a stage loss)")
    assert recipe_text({**AT, "weights": {}, "embedding_weight": 300.0}) == (
        "SimCLR + 300 x (1 - cos) on the final embedding (alone: the authors' code runs it, at 1, as its 'SP')")
    nad = {"loss": "at", "placement": "authors", "weights": {"layer4": 5000.0}, "weights_given": True}
    assert recipe_text(nad) == "SimCLR + AT on layer4 at 5000 (weights as given)"
    mimic = {"loss": "mimic", "placement": "source", "weights": {"layer1": 1200.0, "layer4": 9000.0},
             "embedding_weight": 1.0, "embedding_own": 1.0, "weighing": {"mutual_information": {}}}
    assert recipe_text(mimic) == ("SimCLR + AT on layer1 at 1200, layer4 at 9000 (source, weighted by mutual "
                                  "information) + 1 x (1 - cos) on the final embedding (MIMIC's own clone loss)")
    assert recipe_text({"loss": "finetune-only"}) == "SimCLR on the clean data only (no teacher term)"
    demo = make_config("distill", "demo")
    assert loss_record(demo)["recipe"] == recipe_text({**AT, "embedding_weight": demo.embedding_weight})
    assert "(authors, weighted by mutual information)" in loss_record(make_config("distill", "demo",
                                                                                  {"defence": "MIMIC"}))["recipe"]
    assert teacher_text({"teacher": "finetuned", "teacher_budget": {"epochs": 5, "lr": 0.002}}) == (
        "finetuned: 5 SimCLR epochs at lr 0.002")


def story(teacher_asr, student_asr, teacher_ca=0.92, student_ca=0.91, teacher="finetuned"):
    return {"teacher": teacher, "clean": {"ca": 0.93, "asr": 0.03}, "teacher_scores": {"ca": teacher_ca,
            "asr": teacher_asr}, "distilled": {"ca": student_ca, "asr": student_asr}}


def test_the_verdict_says_which_defence_did_better_against_the_clean_floor():
    # removed means ASR at most ASR-B + 5 points: here 8%
    assert verdict(story(0.04, 0.004)).startswith("Both removed the backdoor here, and fine-tuning alone kept more")
    assert verdict(story(0.04, 0.004, 0.90, 0.91)).startswith("Both removed the backdoor here, and distillation kept")
    assert verdict(story(0.60, 0.02)).startswith("Distillation removed the backdoor that fine-tuning alone (the "
                                                 "teacher) left. Fine-tuning alone (the teacher): ASR 60.0% at CA 92.0%")
    assert verdict(story(0.02, 0.30)).startswith("Fine-tuning alone (the teacher) removed the backdoor here and "
                                                 "distillation did not")
    assert verdict(story(0.50, 0.30)).startswith("Neither removed the backdoor here")
    assert verdict(story(0.09, 0.02, teacher="pruned")).startswith("Distillation removed the backdoor that "
                                                                  "fine-pruning alone")
    assert verdict(story(0.04, 0.02, teacher="pruned")).startswith("Both removed the backdoor here, and fine-pruning "
                                                                  "alone kept more accuracy")
    assert verdict(story(0.9, 0.02, teacher="poisoned")) is None  # a poisoned teacher is no defence of its own
    assert verdict({**story(0.04, 0.02), "clean": None}).startswith("Both removed")  # floor 10% without ASR-B
